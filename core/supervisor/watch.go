package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lintelhq/lintel/core/config"
)

// watch reloads when a watched file changes and then stays unchanged for
// one interval (so a file being written is not read half-done). After a
// failed reload the same files are not tried again until they change.
func (s *Supervisor) watch() {
	defer s.watcher.Done()
	seen := fingerprint(s.cur.Load().cfg)
	for {
		cfg := s.cur.Load().cfg
		select {
		case <-s.stop:
			return
		case <-time.After(cfg.Server.WatchInterval.D()):
		}
		if !cfg.Server.Watch {
			seen = ""
			continue
		}
		fp := fingerprint(cfg)
		if seen == "" || fp == seen {
			seen = fp
			continue
		}
		select {
		case <-s.stop:
			return
		case <-time.After(cfg.Server.WatchInterval.D()):
		}
		if fingerprint(cfg) != fp {
			continue // still being written
		}
		s.Reload("files changed")
		seen = fingerprint(s.cur.Load().cfg)
	}
}

// watched lists the files a config depends on: the config file, every
// .wasm in the plugins directory, and the files it names (certificates,
// CA bundles, config_files).
func watched(cfg *config.Config) []string {
	base := filepath.Dir(cfg.File)
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	files := []string{cfg.File}
	dir := abs(cfg.Plugins.Dir)
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".wasm") {
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
	}
	for _, l := range cfg.Listeners {
		if l.TLS != nil {
			for _, c := range l.TLS.Certificates {
				files = append(files, abs(c.Cert), abs(c.Key))
			}
		}
	}
	for _, svc := range cfg.Services {
		if svc.TLS != nil && svc.TLS.CAFile != "" {
			files = append(files, abs(svc.TLS.CAFile))
		}
	}
	for _, f := range cfg.Filters {
		for _, p := range f.ConfigFiles {
			files = append(files, abs(p))
		}
	}
	slices.Sort(files)
	return slices.Compact(files)
}

// fingerprint sums up the size and modification time of the watched
// files, and which are missing.
func fingerprint(cfg *config.Config) string {
	var b strings.Builder
	for _, f := range watched(cfg) {
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s %d %d\n", f, st.Size(), st.ModTime().UnixNano())
		} else {
			fmt.Fprintf(&b, "%s missing\n", f)
		}
	}
	return b.String()
}
