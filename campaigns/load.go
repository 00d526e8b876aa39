package campaigns

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LoadPaths loads campaign files and directories. A directory contributes its
// *.yaml and *.yml files, in name order, not its subdirectories (a directory
// without any is an error, ErrNoCampaigns: a wrong path or an empty mount
// must not pass for "no campaigns"); a file is
// loaded whatever its extension. Names must be unique across the whole set: a
// repeated name is an error at the later file's name. LoadPaths returns every
// valid campaign and, when anything was wrong, an ErrorList of all problems.
func LoadPaths(paths []string, d Defaults) ([]*Campaign, error) {
	var (
		out   []*Campaign
		errs  ErrorList
		seen  = map[string]bool{}      // cleaned paths already loaded
		names = map[string]*Campaign{} // name -> first campaign
	)
	load := func(path string) {
		key := filepath.Clean(path)
		if abs, err := filepath.Abs(key); err == nil {
			key = abs
		}
		if seen[key] {
			return
		}
		seen[key] = true
		c, err := LoadFile(path, d)
		if err != nil {
			if l, ok := err.(ErrorList); ok {
				errs = append(errs, l...)
			} else {
				errs = append(errs, &Error{File: path, Msg: err.Error()})
			}
			return
		}
		if first := names[c.Name]; first != nil {
			errs = append(errs, &Error{File: c.File, Line: c.nameLine, Col: c.nameCol,
				Msg: fmt.Sprintf("duplicate campaign name %q (first in %s:%d:%d)", c.Name, first.File, first.nameLine, first.nameCol)})
			return
		}
		names[c.Name] = c
		out = append(out, c)
	}
	for _, path := range paths {
		fi, err := os.Stat(path)
		if err != nil {
			errs = append(errs, &Error{File: path, Msg: fmt.Sprintf("load: %v", err)})
			continue
		}
		if !fi.IsDir() {
			load(path)
			continue
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			errs = append(errs, &Error{File: path, Msg: fmt.Sprintf("load: %v", err)})
			continue
		}
		var files []string
		for _, e := range entries {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		if len(files) == 0 {
			errs = append(errs, &Error{File: path, Msg: ErrNoCampaigns.Error(), Err: ErrNoCampaigns})
			continue
		}
		slices.Sort(files)
		for _, f := range files {
			load(f)
		}
	}
	LinkReserves(out)
	return out, errs.Err()
}
