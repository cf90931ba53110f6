// The Cloudflare driver: see docs/drivers/. (Placeholder until the driver lands in this module.)
enum CloudflareDriverModule {}
