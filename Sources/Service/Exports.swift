// The webhook gate lives in Webhooks (so the fuzzers can link it without Hummingbird); everything
// that imports Service still sees it.
@_exported import Webhooks
