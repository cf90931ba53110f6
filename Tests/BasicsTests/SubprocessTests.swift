import Basics
import Foundation
import Testing

@Suite struct SubprocessTests {
  @Test func exitStatusAndOutput() throws {
    let ok = try Subprocess.run(["sh", "-c", "printf out; printf err >&2; exit 3"])
    #expect(ok.status == 3)
    #expect(String(decoding: ok.stdout, as: UTF8.self) == "out")
    #expect(String(decoding: ok.stderr, as: UTF8.self) == "err")
    #expect(!ok.timedOut && !ok.truncated)
    #expect(try Subprocess.run(["true"]).status == 0)
    // Killed by a signal: 128 + N.
    #expect(try Subprocess.run(["sh", "-c", "kill -TERM $$"]).status == 128 + SIGTERM)
  }

  @Test func stdinEnvironmentAndDirectory() throws {
    let r = try Subprocess.run(
      ["sh", "-c", "cat; printf \" $BASICS_TEST_VAR \"; pwd"], stdin: Data("in".utf8),
      environment: ["BASICS_TEST_VAR": "v"], directory: "/")
    #expect(String(decoding: r.stdout, as: UTF8.self) == "in v /\n")
  }

  @Test func mergedAndBoundedOutput() throws {
    let merged = try Subprocess.run(["sh", "-c", "printf a; printf b >&2; printf c"], mergingStderr: true)
    #expect(String(decoding: merged.stdout, as: UTF8.self) == "abc")
    #expect(merged.stderr.isEmpty)
    // 200 KB written, 1000 bytes kept; the child is not blocked by the dropped rest.
    let big = try Subprocess.run(["sh", "-c", "head -c 200000 /dev/zero"], outputLimit: 1000)
    #expect(big.status == 0)
    #expect(big.stdout.count == 1000)
    #expect(big.truncated)
  }

  @Test func deadlineKills() throws {
    let start = Date()
    let r = try Subprocess.run(["sleep", "30"], timeout: 0.3)
    #expect(r.status == 124)
    #expect(r.timedOut)
    // Killed well before sleep's 30 s (a loose bound: the machine may be busy).
    #expect(Date().timeIntervalSince(start) < 25)
  }

  @Test func deadlineOnAChildThatClosedItsOutput() throws {
    // The output closes at once, the child keeps running: still held to the deadline.
    let r = try Subprocess.run(["sh", "-c", "exec >&- 2>&-; sleep 30"], timeout: 0.3)
    #expect(r.status == 124)
    #expect(r.timedOut)
  }

  @Test func nonexistentProgram() {
    #expect(throws: Subprocess.SpawnError.self) { try Subprocess.run(["/nonexistent/basics-no-such-program"]) }
    do {
      _ = try Subprocess.run(["basics-no-such-program-on-path"])
      Issue.record("spawned a program that does not exist")
    } catch {
      #expect(error.program == "basics-no-such-program-on-path")
      #expect("\(error)".hasPrefix("cannot run basics-no-such-program-on-path: "))
    }
    #expect(throws: Subprocess.SpawnError.self) { try Subprocess.run([]) }
    #expect(throws: Subprocess.SpawnError.self) { try Subprocess.run(["true"], directory: "/nonexistent/dir") }
  }

  @Test func inheritedDescriptorsAreClosed() throws {
    // A descriptor this process opened without close-on-exec is not in the child.
    let fd = open("/dev/null", O_RDONLY)
    #expect(fd >= 3)
    defer { close(fd) }
    let r = try Subprocess.run(["sh", "-c", "[ -e /proc/self/fd/\(fd) ] && echo open || echo closed"])
    #expect(String(decoding: r.stdout, as: UTF8.self) == "closed\n")
  }

  @Test func signalMaskIsReset() throws {
    // A blocked SIGTERM in this thread is not inherited: the child's mask is empty.
    var set = sigset_t()
    var old = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGTERM)
    pthread_sigmask(SIG_BLOCK, &set, &old)
    defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
    let r = try Subprocess.run(["sh", "-c", "grep '^SigBlk' /proc/self/status"])
    #expect(String(decoding: r.stdout, as: UTF8.self).hasSuffix("0000000000000000\n"))
  }

  @Test func onItsOwnThread() async throws {
    let r = try await Subprocess.runOnThread(["sh", "-c", "echo hi"])
    #expect(r.status == 0)
    #expect(String(decoding: r.stdout, as: UTF8.self) == "hi\n")
  }

  @Test func background() throws {
    let child = try Subprocess.start(["sleep", "30"])
    #expect(child.isRunning)
    #expect(child.stop(grace: 5) == 128 + SIGTERM)
    let quick = try Subprocess.start(["sh", "-c", "exit 7"])
    #expect(quick.wait(timeout: 20) == 7)
  }
}

@Suite struct AsyncBridgeTests {
  struct Boom: Error, Equatable {}

  @Test func returnsAndThrows() async {
    // From a thread outside the cooperative pool, as a command's run() is.
    let (value, threw) = await withCheckedContinuation { (cont: CheckedContinuation<(Int?, Bool), Never>) in
      Thread {
        let v = try? AsyncBridge.wait { () async throws -> Int in
          try await Task.sleep(for: .milliseconds(10))
          return 42
        }
        var threw = false
        do { _ = try AsyncBridge.wait { () async throws -> Int in throw Boom() } } catch { threw = error is Boom }
        cont.resume(returning: (v, threw))
      }.start()
    }
    #expect(value == 42)
    #expect(threw)
  }
}
