// Command jwt-auth is Lintel's bundled JWT authentication filter. It
// verifies a bearer token (from Authorization or a cookie) with
// github.com/golang-jwt/jwt/v5 against an explicit algorithm allow-list,
// copies claims to upstream headers and request properties, and answers
// 401 otherwise.
//
//	[filters.auth]
//	plugin = "jwt-auth"
//	config_files = { jwks = "keys/jwks.json" }     # a JWKS file, and/or
//	config = { algorithms = ["RS256"], issuer = "https://idp.example", audience = ["shop"],
//	           claims_to_headers = { sub = "X-User" } }
//
// See plugins/README.md for every key.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lintel "github.com/lintelhq/lintel/sdk/go"
)

func main() {}

// Config is the filter's config table.
type Config struct {
	Algorithms         []string          `json:"algorithms"`
	Keys               []KeyConfig       `json:"keys"`
	JWKS               string            `json:"jwks"`
	JWKSURL            string            `json:"jwks_url"`
	JWKSRefresh        string            `json:"jwks_refresh"`
	Issuer             string            `json:"issuer"`
	Audience           []string          `json:"audience"`
	RequiredClaims     []string          `json:"required_claims"`
	RequireExp         *bool             `json:"require_exp"`
	Leeway             string            `json:"leeway"`
	Cookie             string            `json:"cookie"`
	ClaimsToHeaders    map[string]string `json:"claims_to_headers"`
	ClaimsToProperties map[string]string `json:"claims_to_properties"`
	CacheSize          *int              `json:"cache_size"`
	Realm              string            `json:"realm"`
}

var supported = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true, "PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true, "EdDSA": true, "HS256": true, "HS384": true, "HS512": true,
}

// verifier is the configured filter.
type verifier struct {
	cfg       Config
	parser    *jwt.Parser
	keys      *keySet
	refresh   time.Duration
	fetchedAt time.Time
	triedAt   time.Time
	forcedAt  time.Time
	cache     map[string]cached
	cacheSize int
}

type cached struct {
	claims jwt.MapClaims
	until  time.Time
}

var v *verifier

var (
	decisions = lintel.NewCounter("jwt_auth_decisions_total", "Requests allowed or denied by jwt-auth.", "result")
)

func init() {
	var c Config
	if err := lintel.Config(&c); err != nil {
		panic("jwt-auth: config: " + err.Error())
	}
	var err error
	if v, err = newVerifier(c); err != nil && lintel.Hosted {
		panic("jwt-auth: config: " + err.Error())
	}
	lintel.Declare(lintel.Stateless | lintel.NoResponse | lintel.Memoizable)
	lintel.HandleRequest(func(req lintel.Request, resp lintel.Response) bool { return v.handle(req, resp) })
}

func newVerifier(c Config) (*verifier, error) {
	if len(c.Algorithms) == 0 {
		return nil, errors.New("algorithms: list the algorithms to accept, e.g. [\"RS256\"]")
	}
	for _, a := range c.Algorithms {
		if !supported[a] {
			return nil, fmt.Errorf("algorithms: %q is not supported (none is never accepted)", a)
		}
	}
	if c.ClaimsToProperties == nil {
		c.ClaimsToProperties = map[string]string{"sub": "user"}
	}
	if c.Realm == "" {
		c.Realm = "lintel"
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(c.Algorithms), jwt.WithIssuedAt()}
	if c.RequireExp == nil || *c.RequireExp {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if c.Leeway != "" {
		d, err := time.ParseDuration(c.Leeway)
		if err != nil {
			return nil, fmt.Errorf("leeway: %v", err)
		}
		opts = append(opts, jwt.WithLeeway(d))
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if len(c.Audience) > 0 {
		opts = append(opts, jwt.WithAudience(c.Audience...))
	}
	v := &verifier{cfg: c, parser: jwt.NewParser(opts...), keys: newKeySet(), refresh: 10 * time.Minute,
		cache: map[string]cached{}, cacheSize: 4096}
	if c.CacheSize != nil {
		v.cacheSize = *c.CacheSize
	}
	if c.JWKSRefresh != "" {
		d, err := time.ParseDuration(c.JWKSRefresh)
		if err != nil || d < time.Second {
			return nil, fmt.Errorf("jwks_refresh: %q", c.JWKSRefresh)
		}
		v.refresh = d
	}
	for i, kc := range c.Keys {
		k, err := kc.key()
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %v", i, err)
		}
		v.keys.add(k)
	}
	if c.JWKS != "" {
		skipped, err := parseJWKS([]byte(c.JWKS), v.keys)
		if err != nil {
			return nil, fmt.Errorf("jwks: %v", err)
		}
		for _, s := range skipped {
			lintel.Warn("JWKS key skipped", "key", s)
		}
	}
	if !v.keys.loaded && c.JWKSURL == "" {
		return nil, errors.New("no keys: give keys, jwks (config_files) or jwks_url")
	}
	return v, nil
}

// handle runs the request phase.
func (v *verifier) handle(req lintel.Request, resp lintel.Response) bool {
	// A client must not be able to send what only this filter may set,
	// whether or not its token turns out valid.
	for _, h := range v.cfg.ClaimsToHeaders {
		req.Header().Del(h)
	}
	token, problem := v.token(req)
	if problem != "" {
		return v.deny(resp, 400, "invalid_request", problem)
	}
	if token == "" {
		return v.deny(resp, 401, "", "missing bearer token")
	}
	claims, until, err := v.verify(token)
	if errors.Is(err, errNoKeys) {
		decisions.Add(1, "keys_unavailable")
		resp.Header().Set("Retry-After", "5")
		return v.deny(resp, 503, "", "verification keys unavailable")
	}
	if err != nil {
		return v.deny(resp, 401, "invalid_token", describe(err))
	}
	for claim, header := range v.cfg.ClaimsToHeaders {
		if s, ok := claimString(claims[claim]); ok {
			req.Header().Set(header, s)
		}
	}
	for claim, prop := range v.cfg.ClaimsToProperties {
		if s, ok := claimString(claims[claim]); ok {
			lintel.SetProperty(prop, s)
		}
	}
	decisions.Add(1, "allowed")
	// The same credentials get the same answer until the token's cache
	// entry ends: the host may give it without calling this filter.
	if !until.IsZero() {
		if v.cfg.Cookie != "" {
			lintel.Memoize(time.Until(until), "Authorization", "Cookie")
		} else {
			lintel.Memoize(time.Until(until), "Authorization")
		}
	}
	return true
}

// token takes the bearer token from Authorization, or from the cookie.
// A request that carries more than one credential (two Authorization
// values, the cookie twice, or a cookie that differs from the
// Authorization token) is refused with a problem to report: the upstream
// could read the one this filter did not check.
func (v *verifier) token(req lintel.Request) (token, problem string) {
	auths := req.Header().Values("Authorization")
	if len(auths) > 1 {
		return "", "more than one Authorization header"
	}
	if len(auths) == 1 {
		scheme, tok, ok := strings.Cut(auths[0], " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", ""
		}
		token = strings.TrimSpace(tok)
		if strings.ContainsAny(token, " \t,") {
			return "", "the Authorization header holds more than one credential"
		}
	}
	if v.cfg.Cookie == "" {
		return token, ""
	}
	var cookie string
	found := 0
	for _, line := range req.Header().Values("Cookie") {
		for _, part := range strings.Split(line, ";") {
			name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			if name == v.cfg.Cookie {
				cookie = val
				found++
			}
		}
	}
	switch {
	case found > 1:
		return "", fmt.Sprintf("more than one %s cookie", v.cfg.Cookie)
	case found == 1 && token != "" && cookie != token:
		return "", fmt.Sprintf("the Authorization header and the %s cookie hold different tokens", v.cfg.Cookie)
	case token == "":
		return cookie, ""
	}
	return token, ""
}

var (
	errNoKeys          = errors.New("no verification keys")
	errRecentlyFetched = errors.New("JWKS fetched recently")
)

// verifications counts signature checks (not cache hits), for tests.
var verifications int

// verify checks a token, from the cache of verified tokens when it can:
// a token is remembered (the whole token is the key, so a hit is an exact
// match, never a collision) until it expires, so a client sending the same
// token pays for one signature check. until is when the token's cache
// entry ends (zero when it is not cached).
func (v *verifier) verify(token string) (claims jwt.MapClaims, until time.Time, err error) {
	now := time.Now()
	if c, ok := v.cache[token]; ok {
		if now.Before(c.until) {
			return c.claims, c.until, nil
		}
		delete(v.cache, token)
	}
	if err := v.ensureKeys(now, false); err != nil && !v.keys.loaded {
		return nil, time.Time{}, errNoKeys
	}
	verifications++
	claims = jwt.MapClaims{}
	_, err = v.parser.ParseWithClaims(token, claims, v.keyFunc)
	if errors.Is(err, errUnknownKID) && v.cfg.JWKSURL != "" && v.ensureKeys(now, true) == nil {
		claims = jwt.MapClaims{}
		_, err = v.parser.ParseWithClaims(token, claims, v.keyFunc)
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	for _, c := range v.cfg.RequiredClaims {
		if _, ok := claims[c]; !ok {
			return nil, time.Time{}, fmt.Errorf("required claim %q is missing", c)
		}
	}
	return claims, v.remember(token, claims, now), nil
}

// remember caches a verified token, and returns until when (zero when
// the cache is off).
func (v *verifier) remember(token string, claims jwt.MapClaims, now time.Time) time.Time {
	if v.cacheSize <= 0 {
		return time.Time{}
	}
	until := now.Add(5 * time.Minute)
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil && exp.Before(until) {
		until = exp.Time
	}
	if len(v.cache) >= v.cacheSize {
		for k, c := range v.cache {
			if !now.Before(c.until) {
				delete(v.cache, k)
			}
		}
		if len(v.cache) >= v.cacheSize {
			clear(v.cache)
		}
	}
	v.cache[strings.Clone(token)] = cached{claims, until}
	return until
}

func (v *verifier) keyFunc(t *jwt.Token) (any, error) {
	alg, _ := t.Header["alg"].(string)
	kid, _ := t.Header["kid"].(string)
	k, err := v.keys.find(kid, alg)
	if err != nil {
		return nil, err
	}
	return k, nil // for hostMethod.Verify
}

// ensureKeys fetches the JWKS URL when the keys are older than
// jwks_refresh, or, with force, when a token names an unknown kid (at most
// once a minute). Instances share what they fetched through the filter's
// shared state.
func (v *verifier) ensureKeys(now time.Time, force bool) error {
	if v.cfg.JWKSURL == "" {
		return nil
	}
	switch {
	case force && now.Sub(v.forcedAt) < time.Minute:
		return errRecentlyFetched // an unknown kid forces one fetch a minute
	case !force && now.Sub(v.fetchedAt) < v.refresh:
		return nil
	case !force && now.Sub(v.triedAt) < 10*time.Second:
		return errRecentlyFetched // a failed fetch is retried after 10s
	}
	if force {
		v.forcedAt = now
	}
	if !force {
		if doc, ok, _ := lintel.StateGet("jwks"); ok && v.load(doc) == nil {
			v.fetchedAt = now
			return nil
		}
	}
	v.triedAt = now
	r, err := lintel.Fetch("GET", v.cfg.JWKSURL, []string{"Accept: application/json"}, nil)
	if err == nil && r.Status != 200 {
		err = fmt.Errorf("JWKS answered %d", r.Status)
	}
	if err == nil {
		err = v.load(r.Body)
	}
	if err != nil {
		lintel.Warn("JWKS refresh failed; keeping the keys we have", "url", v.cfg.JWKSURL, "error", err.Error())
		return err
	}
	v.fetchedAt = now
	lintel.StateSet("jwks", r.Body, v.refresh)
	return nil
}

// load replaces the URL's keys with a JWKS document (inline keys stay).
func (v *verifier) load(doc []byte) error {
	keys := newKeySet()
	for _, kc := range v.cfg.Keys {
		k, _ := kc.key()
		keys.add(k)
	}
	if v.cfg.JWKS != "" {
		parseJWKS([]byte(v.cfg.JWKS), keys)
	}
	if _, err := parseJWKS(doc, keys); err != nil {
		return err
	}
	v.keys = keys
	return nil
}

// describe says why a token failed, never repeating the token.
func describe(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "the token was issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the token has the wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "the token has the wrong audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "the token lacks a required claim"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "the token's signature cannot be verified"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "the token is malformed"
	}
	if strings.Contains(err.Error(), "required claim") {
		return "the token lacks a required claim"
	}
	return "the token is not valid"
}

// deny answers the request: 400 or 401 with WWW-Authenticate (RFC 6750) and a
// problem body that carries neither the token nor any key material.
func (v *verifier) deny(resp lintel.Response, status int, code, detail string) bool {
	decisions.Add(1, map[int]string{400: "denied", 401: "denied", 503: "unavailable"}[status])
	if status == 401 || status == 400 {
		challenge := fmt.Sprintf(`Bearer realm=%q`, v.cfg.Realm)
		if code != "" {
			challenge += fmt.Sprintf(`, error=%q, error_description=%q`, code, detail)
		}
		resp.Header().Set("WWW-Authenticate", challenge)
	}
	id, _ := lintel.Property("request_id")
	body, _ := json.Marshal(map[string]any{"status": status, "title": map[int]string{400: "Bad Request", 401: "Unauthorized", 503: "Service Unavailable"}[status], "detail": detail, "request_id": id})
	resp.Header().Set("Content-Type", "application/problem+json")
	resp.Header().Set("Cache-Control", "no-store")
	resp.SetStatus(status)
	resp.Write(body)
	return false
}

func claimString(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), true
	case bool:
		return fmt.Sprint(t), true
	case []any:
		parts := make([]string, 0, len(t))
		for _, e := range t {
			if s, ok := claimString(e); ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, " "), true
	}
	return "", false
}
