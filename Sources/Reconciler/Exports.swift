// The plan types moved to PlanFile (so the fuzzers can link the reader without GRDB and libgit2);
// everything that imports Reconciler still sees them.
@_exported import PlanFile
