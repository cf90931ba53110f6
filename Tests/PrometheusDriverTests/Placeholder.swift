import Testing
// Tests of the Prometheus driver land here.
