package wasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/lintelhq/lintel/core/config"
)

// section is one section of a module's binary: its id, its bytes whole,
// and for a custom section (id 0) its name and payload.
type section struct {
	id      byte
	raw     []byte
	name    string
	payload []byte
}

// sections splits a module's binary into its sections.
func sections(code []byte) ([]section, error) {
	if len(code) < 8 || !bytes.Equal(code[:4], []byte("\x00asm")) {
		return nil, errors.New("not a WebAssembly module")
	}
	var out []section
	for rest := code[8:]; len(rest) > 0; {
		size, n := binary.Uvarint(rest[1:])
		if n <= 0 || size > uint64(len(rest)-1-n) {
			return nil, errors.New("truncated section in the module")
		}
		s := section{id: rest[0], raw: rest[:1+n+int(size)]}
		body := s.raw[1+n:]
		rest = rest[len(s.raw):]
		if s.id == 0 {
			l, m := binary.Uvarint(body)
			if m <= 0 || l > uint64(len(body)-m) {
				return nil, errors.New("malformed custom section name")
			}
			s.name, s.payload = string(body[m:m+int(l)]), body[m+int(l):]
		}
		out = append(out, s)
	}
	return out, nil
}

// ConfigSchema returns the raw config schema a module declares in its
// custom section sectionConfigSchema, nil when it declares none.
func ConfigSchema(code []byte) ([]byte, error) {
	secs, err := sections(code)
	if err != nil {
		return nil, err
	}
	for _, s := range secs {
		if s.id == 0 && s.name == sectionConfigSchema {
			return s.payload, nil
		}
	}
	return nil, nil
}

// parseSchema reads the config schema a module declares; nil when none,
// or when the binary cannot be split into sections (compiling it says
// what is wrong, better).
func parseSchema(code []byte) (*config.PluginSchema, error) {
	raw, err := ConfigSchema(code)
	if raw == nil || err != nil {
		return nil, nil
	}
	s, err := config.ParsePluginSchema(raw)
	if err != nil {
		return nil, fmt.Errorf("its config schema (custom section %s): %v", sectionConfigSchema, err)
	}
	return s, nil
}

// EmbedSchema returns a module with schema (JSON, checked) as its config
// schema: any custom section sectionConfigSchema it had is dropped and a
// new one appended at the end, where a custom section may stand without
// shifting anything else. It is for toolchains that cannot write a
// custom section themselves (standard Go): `gatewayd plugin schema`.
func EmbedSchema(code, schema []byte) ([]byte, error) {
	if _, err := config.ParsePluginSchema(schema); err != nil {
		return nil, err
	}
	secs, err := sections(code)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), code[:8]...)
	for _, s := range secs {
		if s.id != 0 || s.name != sectionConfigSchema {
			out = append(out, s.raw...)
		}
	}
	body := binary.AppendUvarint(nil, uint64(len(sectionConfigSchema)))
	body = append(body, sectionConfigSchema...)
	body = append(body, schema...)
	out = append(out, 0)
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...), nil
}
