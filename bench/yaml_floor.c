/*
 * yaml_floor: the parsing floor for `ytempire validate`.
 *
 * Walks a directory recursively and runs only libyaml's event parser
 * (yaml_parser_parse) over every *.yaml / *.yml file: no tree building, no
 * type decoding, no validation.  Whatever `ytempire validate` does on top of
 * this is overhead; bench/run.sh reports validate/floor.
 *
 * Build: cc -O2 -o bench/out/yaml_floor bench/yaml_floor.c $(pkg-config --cflags --libs yaml-0.1)
 * Usage: yaml_floor DIR
 * Output: "files=N documents=D events=E bytes=B" on stdout; exit 1 on a parse
 * error (reported as FILE:LINE:COL: error: ...) or an unreadable directory.
 */
#define _GNU_SOURCE /* FTW_ACTIONRETVAL, FTW_SKIP_SUBTREE */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static unsigned long long n_files, n_docs, n_events, n_bytes;
static int failed;

static int has_yaml_ext(const char *path) {
    size_t n = strlen(path);
    return (n > 5 && strcmp(path + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(path + n - 4, ".yml") == 0);
}

static void parse_file(const char *path, off_t size) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); failed = 1; return; }
    yaml_parser_t parser;
    yaml_event_t event;
    if (!yaml_parser_initialize(&parser)) {
        fprintf(stderr, "%s: error: cannot initialize libyaml parser\n", path);
        fclose(f); failed = 1; return;
    }
    yaml_parser_set_input_file(&parser, f);
    for (;;) {
        if (!yaml_parser_parse(&parser, &event)) {
            fprintf(stderr, "%s:%lu:%lu: error: %s\n", path,
                    (unsigned long)parser.problem_mark.line + 1,
                    (unsigned long)parser.problem_mark.column + 1,
                    parser.problem ? parser.problem : "parse error");
            failed = 1;
            break;
        }
        n_events++;
        yaml_event_type_t t = event.type;
        if (t == YAML_DOCUMENT_START_EVENT) n_docs++;
        yaml_event_delete(&event);
        if (t == YAML_STREAM_END_EVENT) break;
    }
    yaml_parser_delete(&parser);
    fclose(f);
    n_files++;
    n_bytes += (unsigned long long)size;
}

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    if (type == FTW_D) {
        /* skip hidden directories such as .git */
        const char *base = path + ftw->base;
        if (ftw->level > 0 && base[0] == '.') return FTW_SKIP_SUBTREE;
        return FTW_CONTINUE;
    }
    if (type == FTW_DNR) { fprintf(stderr, "%s: error: cannot read directory\n", path); failed = 1; return FTW_CONTINUE; }
    if (type == FTW_F && has_yaml_ext(path)) parse_file(path, st->st_size);
    return FTW_CONTINUE;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    if (nftw(argv[1], visit, 64, FTW_PHYS | FTW_ACTIONRETVAL) == -1) {
        perror(argv[1]);
        return 1;
    }
    printf("files=%llu documents=%llu events=%llu bytes=%llu\n", n_files, n_docs, n_events, n_bytes);
    return failed ? 1 : 0;
}
