// Package scaffold writes new plugin projects: `gatewayd plugin new NAME
// -lang go|rust|c|assemblyscript|wat`. A project builds where it is
// written, outside Lintel's repository and offline (except that the
// AssemblyScript compiler comes from npm): it carries its SDK, a Makefile
// (or npm script), a README and, in Go, tests against the SDK's fake
// host. Each makes the same small plugin, which loads in gatewayd as it
// is.
//
// The C, Rust and AssemblyScript SDKs come from sdk/ itself (sdk.Files).
// The Go SDK is its own module, which this one cannot embed: a copy of
// its library is kept in _sdk/go, and its go.mod is
// templates/go/lintel-sdk/go.mod.tmpl (a directory holding a go.mod
// cannot be embedded); a test holds both equal to sdk/go (go test
// ./internal/scaffold -update copies them again).
package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/lintelhq/lintel/sdk"
)

//go:embed templates _sdk
var files embed.FS

// Languages are the languages a project can be written in.
var Languages = []string{"go", "rust", "c", "assemblyscript", "wat"}

// sdks maps each language with an SDK to where its files are (in sdk.Files,
// or this package's copy of the Go SDK) and where they go in a project.
var sdks = map[string]struct {
	fs        fs.FS
	dir, dest string
}{
	"go":             {files, "_sdk/go", "lintel-sdk"},
	"rust":           {sdk.Files, "rust/src", "lintel"},
	"c":              {sdk.Files, "c", "."},
	"assemblyscript": {sdk.Files, "assemblyscript/assembly", "assembly"},
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// Write writes the project of plugin name in lang into dir, which must
// not exist or be empty. name is the plugin's (and its .wasm file's)
// name: lower-case letters, digits and '-'.
func Write(dir, name, lang string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("plugin name %q: use lower-case letters, digits and '-', starting with a letter", name)
	}
	if _, ok := langTitle[lang]; !ok {
		return fmt.Errorf("language %q: choose one of %s", lang, strings.Join(Languages, ", "))
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty: a project is written into a new directory", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	data := struct {
		Name, Ident, Lang, LangTitle string
		NameLen, DeniedLen           int
	}{name, strings.ReplaceAll(name, "-", "_"), lang, langTitle[lang], len(name), len("denied by " + name + "\n")}

	out := map[string][]byte{}
	readme, err := render("templates/README.md.tmpl", data)
	if err != nil {
		return err
	}
	out["README.md"] = readme
	root := "templates/" + lang
	err = fs.WalkDir(files, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := render(p, data)
		if err != nil {
			return err
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(p, root+"/"), ".tmpl")
		rel = strings.Replace(rel, "plugin.", name+".", 1) // plugin.c -> NAME.c
		out[rel] = b
		return nil
	})
	if err != nil {
		return err
	}
	if s, ok := sdks[lang]; ok {
		err = fs.WalkDir(s.fs, s.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(s.fs, p)
			out[path.Join(s.dest, strings.TrimPrefix(p, s.dir+"/"))] = b
			return err
		})
		if err != nil {
			return err
		}
	}
	for rel, b := range out {
		file := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(file, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

var langTitle = map[string]string{"go": "Go", "rust": "Rust", "c": "C", "assemblyscript": "AssemblyScript", "wat": "the WebAssembly text format"}

func render(name string, data any) ([]byte, error) {
	src, err := files.ReadFile(name)
	if err != nil {
		return nil, err
	}
	t, err := template.New(name).Delims("{{", "}}").Parse(string(src))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = t.Execute(&b, data)
	return b.Bytes(), err
}
