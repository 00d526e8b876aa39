package engine

// SetRepeatAfter sets how many counters e's previews keep for every user
// before they count only their repeat users. Call it before e runs.
func SetRepeatAfter(e *Engine, n int) { e.repeatAfter = n }
