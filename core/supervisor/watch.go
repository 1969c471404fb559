package supervisor

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lintelhq/lintel/core/config"
)

// watch reloads when the files the running generation was built from
// differ from what is on disk, and have read the same on two polls in a
// row (so a file being written is not read half-done). Each generation
// carries the digests of its files, taken before it was built (the
// config file's from the very bytes parsed): a write that lands during a
// reload is a difference afterwards, and a reload asked for by SIGHUP or
// the admin API leaves nothing to reload again. Files a reload failed on
// are not tried again until they change.
func (s *Supervisor) watch() {
	defer s.watcher.Done()
	var pending string
	for {
		select {
		case <-s.stop:
			return
		case <-time.After(s.cur.Load().cfg.Server.WatchInterval.D()):
		}
		g := s.cur.Load()
		if !g.cfg.Server.Watch {
			pending = ""
			continue
		}
		fp := s.digests.fingerprint(g.cfg)
		if fp == g.files || fp == s.failedFiles() {
			pending = ""
			continue
		}
		if fp != pending {
			pending = fp // changed, or still being written: poll again
			continue
		}
		pending = ""
		s.reload("files changed", g)
	}
}

// failedFiles is the fingerprint of the files the last reload failed on
// ("" after a success).
func (s *Supervisor) failedFiles() string {
	s.failedMu.Lock()
	defer s.failedMu.Unlock()
	return s.failed
}

func (s *Supervisor) setFailedFiles(fp string) {
	s.failedMu.Lock()
	defer s.failedMu.Unlock()
	s.failed = fp
}

// watched lists the files a config depends on: the config file, every
// .wasm in the plugins directory, and the files it names (certificates,
// CA bundles, config_files, a grpc service's .proto files and the files
// they may import, a descriptor set).
func watched(cfg *config.Config) []string {
	files := []string{cfg.File}
	dir := cfg.Plugins.Dir
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
				files = append(files, c.Cert, c.Key)
			}
		}
	}
	for _, svc := range cfg.Services {
		if svc.TLS != nil && svc.TLS.CAFile != "" {
			files = append(files, svc.TLS.CAFile)
		}
		files = append(files, protoFiles(svc)...)
		if svc.DescriptorSet != "" {
			files = append(files, svc.DescriptorSet)
		}
	}
	for _, f := range cfg.Filters {
		for _, p := range f.ConfigFiles {
			files = append(files, p)
		}
	}
	slices.Sort(files)
	return slices.Compact(files)
}

// digests hashes the contents of watched files. The config file is hashed
// on every poll (it is small, and its digest must be of its bytes); the
// others (plugins of megabytes) are hashed again only when their size or
// modification time (in nanoseconds) changed.
type digests struct {
	mu    sync.Mutex
	cache map[string]digestEntry
}

type digestEntry struct {
	stat   string
	digest string
}

// fingerprint sums up the contents of cfg's watched files, and which are
// missing.
func (d *digests) fingerprint(cfg *config.Config) string {
	return d.fingerprintWith(cfg, d.configDigest(cfg.File))
}

// fingerprintWith is fingerprint with the config file's digest given
// (that of the bytes a build parsed).
func (d *digests) fingerprintWith(cfg *config.Config, configDigest string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", cfg.File, configDigest)
	for _, f := range watched(cfg) {
		if f != cfg.File {
			fmt.Fprintf(&b, "%s %s\n", f, d.file(f))
		}
	}
	return b.String()
}

func (d *digests) configDigest(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "missing"
	}
	return config.Digest(b)
}

// file returns the digest of one file, "missing" when it cannot be read.
func (d *digests) file(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	key := fmt.Sprintf("%d %d", st.Size(), st.ModTime().UnixNano())
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cache == nil {
		d.cache = map[string]digestEntry{}
	}
	if e, ok := d.cache[path]; ok && e.stat == key {
		return e.digest
	}
	f, err := os.Open(path)
	if err != nil {
		return "missing"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "missing"
	}
	sum := fmt.Sprintf("%x", h.Sum(nil))
	d.cache[path] = digestEntry{key, sum}
	return sum
}

// maxProtoFiles bounds the .proto files watched for one service: a
// proto_path pointed at a large tree must not make each poll read it all.
const maxProtoFiles = 1000

// protoFiles are a grpc service's listed .proto files and the ones they
// may import: every .proto beside them and under its proto_paths.
func protoFiles(svc *config.Service) []string {
	files := append([]string(nil), svc.Protos...)
	seen := map[string]bool{}
	for _, p := range svc.Protos {
		dir := filepath.Dir(p)
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if entries, err := os.ReadDir(dir); err == nil {
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".proto") && len(files) < maxProtoFiles {
					files = append(files, filepath.Join(dir, e.Name()))
				}
			}
		}
	}
	for _, root := range svc.ProtoPaths {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || len(files) >= maxProtoFiles {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(path, ".proto") {
				files = append(files, path)
			}
			return nil
		})
	}
	return files
}
