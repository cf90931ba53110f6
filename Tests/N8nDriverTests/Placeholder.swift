import Testing
// Tests of the N8n driver land here.
