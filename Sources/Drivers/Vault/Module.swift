// The Vault driver: see docs/drivers/. (Placeholder until the driver lands in this module.)
enum VaultDriverModule {}
