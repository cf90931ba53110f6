// The reconcile engine.
