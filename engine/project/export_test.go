package project

// LogReads counts the events the runner has read back from the log.
func (r *Runner) LogReads() int64 { return r.logReads.Load() }
