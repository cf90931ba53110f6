// The N8n driver: see docs/drivers/. (Placeholder until the driver lands in this module.)
enum N8nDriverModule {}
