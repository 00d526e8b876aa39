package engine

// SetRepeatAfter sets how many counters a preview keeps for every user
// before it counts only its repeat users, and returns the restore.
func SetRepeatAfter(n int) (restore func()) {
	old := repeatAfter
	repeatAfter = n
	return func() { repeatAfter = old }
}
