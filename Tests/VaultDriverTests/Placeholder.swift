import Testing
// Tests of the Vault driver land here.
