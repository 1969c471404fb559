package config

import (
	"bytes"
	"net/url"
	"strings"

	"github.com/BurntSushi/toml"
)

// Redacted is the placeholder of a secret in Config.Redacted's output.
const Redacted = "[redacted]"

// Redacted returns the effective configuration, defaults included, as
// TOML that loads again, with what may be secret replaced by
// "[redacted]": admin.token, tracing.headers, every value that came from ${ENV}, the
// password (or lone user) of any URL, and every string in a filter's
// config that its plugin's schema (schemas, by filter name) does not
// declare public; a filter without a schema shows none. Strings keep
// their place, so the shape of every table stays.
func (c *Config) Redacted(schemas map[string]*PluginSchema) ([]byte, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return nil, err
	}
	var m map[string]any
	if _, err := toml.Decode(buf.String(), &m); err != nil {
		return nil, err
	}
	if a, ok := m["admin"].(map[string]any); ok && a["token"] != "" {
		a["token"] = Redacted
	}
	if t, ok := m["tracing"].(map[string]any); ok {
		if h, ok := t["headers"].(map[string]any); ok {
			for k := range h {
				h[k] = Redacted // API keys, however they were written
			}
		}
	}
	if fs, ok := m["filters"].(map[string]any); ok {
		for name, f := range fs {
			if t, ok := f.(map[string]any); ok && t["config"] != nil {
				t["config"] = schemas[name].redact(t["config"])
			}
		}
	}
	c.redact("", m)
	buf.Reset()
	err := toml.NewEncoder(&buf).Encode(m)
	return buf.Bytes(), err
}

// redact replaces values that came from ${ENV}, and URL credentials, at
// any depth.
func (c *Config) redact(key string, v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, el := range t {
			t[k] = c.redact(joinKey(key, k), el)
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
		if c.fromEnv[key] && t != "" {
			return Redacted
		}
		return redactUserinfo(t)
	}
	return v
}

// redactUserinfo hides the credentials of a URL ("redis://:pw@host",
// "https://user:pw@idp"): the password, or a user given alone (a token),
// becomes "redacted".
func redactUserinfo(s string) string {
	if !strings.Contains(s, "://") || !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "redacted")
	} else {
		u.User = url.User("redacted")
	}
	return u.String()
}
