package router

import (
	"errors"
	"net/url"
	"path"
	"strings"
)

// Normalize returns the one path the gateway routes on, hands to filters
// and forwards upstream, or an error for a path that has no safe single
// meaning (the client then gets 400). The policy:
//
//   - Percent-encoding is decoded ("/%61dmin" is "/admin"); the upstream
//     receives the canonical encoding of the decoded path.
//   - An encoded slash or backslash ("%2F", "%5C") is refused: decoding it
//     would change the path's segments, keeping it would make the router
//     and the upstream disagree.
//   - Control characters (NUL included) and raw backslashes are refused.
//   - Repeated slashes collapse and "." and ".." segments are resolved, as
//     RFC 3986 removes dot segments ("//admin" and "/a/../admin" are
//     "/admin"); ".." never climbs above "/".
//   - A segment that is "." or ".." before a ";" ("/..;/admin") is refused:
//     some servers (Tomcat, Jetty) read it as "..".
//   - A trailing slash is kept and significant; case is significant.
//   - No redirects: the normalised path is served directly.
func Normalize(u *url.URL) (string, error) {
	p := u.Path
	if u.RawPath != "" {
		raw := strings.ToLower(u.RawPath)
		if strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
			return "", errors.New("encoded slash or backslash in path")
		}
	}
	if p == "" {
		return "/", nil
	}
	if p[0] != '/' {
		return "", errors.New("path must begin with '/'")
	}
	dirty := false
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x20 || c == 0x7f:
			return "", errors.New("control character in path")
		case c == '\\':
			return "", errors.New("backslash in path")
		case c == '/' && i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.'):
			dirty = true
		case c == ';':
			if dotSegmentBefore(p, i) {
				return "", errors.New("dot segment with parameters in path")
			}
		}
	}
	if !dirty {
		return p, nil
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean, nil
}

// dotSegmentBefore reports whether the segment ending at p[i] (a ';') is
// "." or "..".
func dotSegmentBefore(p string, i int) bool {
	start := strings.LastIndexByte(p[:i], '/') + 1
	seg := p[start:i]
	return seg == "." || seg == ".."
}
