package config

import (
	"bytes"
	"net/url"
	"regexp"

	"github.com/BurntSushi/toml"
)

// Redacted is the placeholder of a secret in Config.Redacted's output.
const Redacted = "[redacted]"

// secretName matches keys whose values are secrets by their name.
var secretName = regexp.MustCompile(`(?i)(secret|password|passwd|token|private|credential|api_?key|^keys?$)`)

// Redacted returns the effective configuration, defaults included, as
// TOML, with secrets that are set replaced by "[redacted]": every value that came
// from ${ENV}, admin.token, the password of state.redis_url, and each
// value under a key named like a secret (secret, password, token, key,
// keys, private, credential, api_key) at any depth.
func (c *Config) Redacted() ([]byte, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return nil, err
	}
	var m map[string]any
	if _, err := toml.Decode(buf.String(), &m); err != nil {
		return nil, err
	}
	c.redact("", m)
	if st, ok := m["state"].(map[string]any); ok {
		if s, ok := st["redis_url"].(string); ok && s != Redacted {
			if u, err := url.Parse(s); err == nil && u.User != nil {
				if _, has := u.User.Password(); has {
					u.User = url.UserPassword(u.User.Username(), "xxxxx")
				}
				st["redis_url"] = u.String()
			}
		}
	}
	buf.Reset()
	err := toml.NewEncoder(&buf).Encode(m)
	return buf.Bytes(), err
}

func (c *Config) redact(key string, v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, el := range t {
			kk := joinKey(key, k)
			if el != "" && (c.fromEnv[kk] || (secretName.MatchString(k) && kk != "state.key_prefix")) {
				t[k] = Redacted
				continue
			}
			t[k] = c.redact(kk, el)
		}
	case []map[string]any:
		for i, el := range t {
			c.redact(indexKey(key, i), el)
		}
	case []any:
		for i, el := range t {
			t[i] = c.redact(indexKey(key, i), el)
		}
	case string:
		if c.fromEnv[key] {
			return Redacted
		}
	}
	return v
}
