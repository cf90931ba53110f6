import Testing
// Tests of the Cloudflare driver land here.
