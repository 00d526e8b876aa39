// Package suggest finds the known name a misspelt one most likely meant,
// for "unknown key (did you mean ...?)" messages of the campaign and config
// loaders.
package suggest

// Closest returns the name of known within edit distance 2 of name, the
// nearest first found, or "" when none is that close.
func Closest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := Distance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// Distance is the Levenshtein distance of a and b in runes; names longer
// than 64 runes are never close (99).
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 99
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
