package wasm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// privateDir makes sure dir is a directory only this process's user can
// write, creating it (and missing parents) with mode 0700: the
// compilation cache holds native code that the sha256 pin of a plugin
// does not cover, and wazero checks its entries with a CRC only, so
// whoever can write there could make the gateway run their code. A path
// that is a symbolic link, owned by another user, or writable by group or
// others is refused, never repaired.
func privateDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("%s is not an absolute path", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	switch {
	case st.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("%s is a symbolic link", dir)
	case !st.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	case st.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("%s has mode %v; it must be 0700 (chmod 700 it, or name another)", dir, st.Mode().Perm())
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return errors.New("cannot tell the owner of " + dir)
	}
	if int(sys.Uid) != os.Getuid() {
		return fmt.Errorf("%s is owned by uid %d, not by this process's user (%d)", dir, sys.Uid, os.Getuid())
	}
	return nil
}

// cacheDir is where compiled plugins are kept: the configured directory,
// or lintel/wasm under the user's cache directory ($XDG_CACHE_HOME or
// ~/.cache); "" when there is none (then plugins compile in memory: never
// into a shared temporary directory).
func cacheDir(configured string) string {
	if configured != "" {
		return configured
	}
	user, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(user, "lintel", "wasm")
}
