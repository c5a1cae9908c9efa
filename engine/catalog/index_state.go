package catalog

// Rebuilding returns a *RebuildingError while the product index is being
// rebuilt from the store at start-up, nil otherwise (readiness checks).
func (c *Catalog) Rebuilding() error { return c.rebuildErr() }

// WaitIndexed blocks until a rebuild of the product index started by Open
// has finished (shoptrail restore, so that the restored instance searches
// at once). It returns at once when none runs.
func (c *Catalog) WaitIndexed() {
	c.importing.Lock()
	c.importing.Unlock() //nolint:staticcheck // an empty critical section: waiting is the point
}
