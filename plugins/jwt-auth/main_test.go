//go:build !wasip1

package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lintel "github.com/lintelhq/lintel/sdk/go"
)

var (
	rsaKey, _       = rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _        = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edKey, _ = ed25519.GenerateKey(rand.Reader)
	hmacSecret      = []byte("0123456789abcdef0123456789abcdef-demo")
)

func pemOf(pub any) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func sign(method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t := jwt.NewWithClaims(method, claims)
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(key)
	if err != nil {
		panic(err)
	}
	return s
}

func good(extra ...any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "iss": "https://idp.example", "aud": "shop", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "scope": "orders:read"}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == nil {
			delete(c, extra[i].(string))
		} else {
			c[extra[i].(string)] = extra[i+1]
		}
	}
	return c
}

func configure(t *testing.T, c Config) {
	t.Helper()
	var err error
	if v, err = newVerifier(c); err != nil {
		t.Fatal(err)
	}
	lintel.Declare(lintel.Stateless | lintel.NoResponse)
	lintel.HandleRequest(func(req lintel.Request, resp lintel.Response) bool { return v.handle(req, resp) })
}

func baseConfig() Config {
	return Config{
		Algorithms: []string{"RS256", "ES256", "EdDSA", "HS256"},
		Keys: []KeyConfig{
			{KID: "rsa1", Alg: "RS256", PEM: pemOf(&rsaKey.PublicKey)},
			{KID: "ec1", PEM: pemOf(&ecKey.PublicKey)},
			{KID: "ed1", PEM: pemOf(edPub)},
			{KID: "hs1", Alg: "HS256", Secret: string(hmacSecret)},
		},
		Issuer:          "https://idp.example",
		Audience:        []string{"shop"},
		ClaimsToHeaders: map[string]string{"sub": "X-User", "scope": "X-Scope"},
	}
}

// run sends one request with the given Authorization value.
func run(auth string, headers ...string) *lintel.FakeHost {
	h := lintel.NewFakeHost()
	if auth != "" {
		h.RequestHeader.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		h.RequestHeader.Set(headers[i], headers[i+1])
	}
	h.Run()
	return h
}

func TestValidTokens(t *testing.T) {
	configure(t, baseConfig())
	for name, tok := range map[string]string{
		"RS256": sign(jwt.SigningMethodRS256, rsaKey, "rsa1", good()),
		"ES256": sign(jwt.SigningMethodES256, ecKey, "ec1", good()),
		"EdDSA": sign(jwt.SigningMethodEdDSA, edKey, "ed1", good()),
		"HS256": sign(jwt.SigningMethodHS256, hmacSecret, "hs1", good()),
	} {
		h := run("Bearer "+tok, "X-User", "forged")
		if h.Answered || h.RequestHeader.Get("X-User") != "alice" || h.RequestHeader.Get("X-Scope") != "orders:read" || h.Properties["user"] != "alice" {
			t.Errorf("%s: answered %v (%d %s), X-User %q, user %q", name, h.Answered, h.Status, h.ResponseBody, h.RequestHeader.Get("X-User"), h.Properties["user"])
		}
	}
}

func TestRejectedTokens(t *testing.T) {
	configure(t, baseConfig())
	rsaPEM := []byte(pemOf(&rsaKey.PublicKey))
	noneTok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, good()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := map[string]struct {
		token  string
		detail string
	}{
		"alg none":                       {noneTok, "cannot be verified"},
		"key confusion":                  {sign(jwt.SigningMethodHS256, rsaPEM, "rsa1", good()), "cannot be verified"},
		"HS256 with the RSA PEM, no kid": {sign(jwt.SigningMethodHS256, rsaPEM, "", good()), "cannot be verified"},
		"bad signature":                  {sign(jwt.SigningMethodRS256, otherRSA, "rsa1", good()), "cannot be verified"},
		"unknown kid":                    {sign(jwt.SigningMethodRS256, rsaKey, "nope", good()), "cannot be verified"},
		"RS384 not allowed":              {sign(jwt.SigningMethodRS384, rsaKey, "rsa1", good()), "cannot be verified"},
		"expired":                        {sign(jwt.SigningMethodRS256, rsaKey, "rsa1", good("exp", time.Now().Add(-time.Minute).Unix())), "expired"},
		"no exp":                         {sign(jwt.SigningMethodRS256, rsaKey, "rsa1", good("exp", nil)), "required claim"},
		"not yet valid":                  {sign(jwt.SigningMethodRS256, rsaKey, "rsa1", good("nbf", time.Now().Add(time.Hour).Unix())), "not valid yet"},
		"issued in the future":           {sign(jwt.SigningMethodRS256, rsaKey, "rsa1", good("iat", time.Now().Add(time.Hour).Unix())), "issued in the future"},
		"wrong issuer":                   {sign(jwt.SigningMethodRS256, rsaKey, "rsa1", good("iss", "https://evil.example")), "wrong issuer"},
		"wrong audience":                 {sign(jwt.SigningMethodRS256, rsaKey, "rsa1", good("aud", "other")), "wrong audience"},
		"garbage":                        {"not.a.token", "malformed"},
	}
	for name, tt := range tests {
		h := run("Bearer "+tt.token, "X-User", "forged")
		if !h.Answered || h.Status != 401 {
			t.Errorf("%s: status %d answered %v", name, h.Status, h.Answered)
			continue
		}
		www := h.ResponseHeader.Get("WWW-Authenticate")
		if !strings.HasPrefix(www, `Bearer realm="lintel", error="invalid_token"`) {
			t.Errorf("%s: WWW-Authenticate %q", name, www)
		}
		var body map[string]any
		json.Unmarshal(h.ResponseBody, &body)
		if !strings.Contains(fmt.Sprint(body["detail"]), tt.detail) {
			t.Errorf("%s: detail %q, want it to mention %q", name, body["detail"], tt.detail)
		}
		if strings.Contains(string(h.ResponseBody), tt.token) || strings.Contains(string(h.ResponseBody), string(hmacSecret)) {
			t.Errorf("%s: the answer echoes the token or the secret", name)
		}
		if h.RequestHeader.Get("X-User") != "" {
			t.Errorf("%s: the client's X-User survived", name)
		}
	}
}

func TestMissingTokenAndCookie(t *testing.T) {
	c := baseConfig()
	c.Cookie = "session"
	configure(t, c)
	h := run("")
	if h.Status != 401 || h.ResponseHeader.Get("WWW-Authenticate") != `Bearer realm="lintel"` {
		t.Errorf("no token: %d %q", h.Status, h.ResponseHeader.Get("WWW-Authenticate"))
	}
	tok := sign(jwt.SigningMethodRS256, rsaKey, "rsa1", good())
	h = run("", "Cookie", "theme=dark; session="+tok)
	if h.Answered {
		t.Errorf("cookie token refused: %s", h.ResponseBody)
	}
	if h = run("Basic dXNlcjpwYXNz"); h.Status != 401 {
		t.Errorf("Basic credentials: %d", h.Status)
	}
}

func TestLeewayAndRequiredClaims(t *testing.T) {
	c := baseConfig()
	c.Leeway = "2m"
	c.RequiredClaims = []string{"tenant"}
	configure(t, c)
	late := sign(jwt.SigningMethodRS256, rsaKey, "rsa1", good("exp", time.Now().Add(-time.Minute).Unix(), "tenant", "t1"))
	if h := run("Bearer " + late); h.Answered {
		t.Errorf("within leeway: %s", h.ResponseBody)
	}
	noTenant := sign(jwt.SigningMethodRS256, rsaKey, "rsa1", good())
	if h := run("Bearer " + noTenant); h.Status != 401 {
		t.Errorf("missing required claim: %d", h.Status)
	}
}

func TestVerifiedTokensAreCached(t *testing.T) {
	configure(t, baseConfig())
	tok := sign(jwt.SigningMethodRS256, rsaKey, "rsa1", good())
	before := verifications
	for range 5 {
		if h := run("Bearer " + tok); h.Answered {
			t.Fatal("refused")
		}
	}
	if n := verifications - before; n != 1 {
		t.Errorf("%d signature checks for 5 requests with one token, want 1", n)
	}
	// An expired entry is not served from the cache.
	short := sign(jwt.SigningMethodRS256, rsaKey, "rsa1", good("exp", time.Now().Add(1500*time.Millisecond).Unix()))
	run("Bearer " + short)
	time.Sleep(2 * time.Second)
	if h := run("Bearer " + short); h.Status != 401 {
		t.Errorf("expired cached token: %d", h.Status)
	}
}

func jwkRSA(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()), "e": base64.RawURLEncoding.EncodeToString([]byte{1, 0, 1})}
}

func TestJWKSDocumentAndURL(t *testing.T) {
	doc, _ := json.Marshal(map[string]any{"keys": []any{
		jwkRSA("r1", &rsaKey.PublicKey),
		map[string]any{"kty": "EC", "kid": "e1", "crv": "P-256", "x": base64.RawURLEncoding.EncodeToString(ecKey.X.FillBytes(make([]byte, 32))), "y": base64.RawURLEncoding.EncodeToString(ecKey.Y.FillBytes(make([]byte, 32)))},
		map[string]any{"kty": "OKP", "kid": "o1", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(edPub)},
		map[string]any{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
	}})
	configure(t, Config{Algorithms: []string{"RS256", "ES256", "EdDSA"}, JWKS: string(doc)})
	for _, tok := range []string{
		sign(jwt.SigningMethodRS256, rsaKey, "r1", good()),
		sign(jwt.SigningMethodES256, ecKey, "e1", good()),
		sign(jwt.SigningMethodEdDSA, edKey, "o1", good()),
	} {
		if h := run("Bearer " + tok); h.Answered {
			t.Errorf("JWKS key refused: %s", h.ResponseBody)
		}
	}

	// A JWKS URL, fetched through the host, and rotation by kid.
	rotated, _ := rsa.GenerateKey(rand.Reader, 2048)
	current := []any{jwkRSA("k1", &rsaKey.PublicKey)}
	fetches := 0
	configure(t, Config{Algorithms: []string{"RS256"}, JWKSURL: "https://idp.example/jwks.json"})
	h := lintel.NewFakeHost()
	h.Fetch = func(method, url string, headers []string, body []byte) (int, http.Header, []byte, error) {
		fetches++
		b, _ := json.Marshal(map[string]any{"keys": current})
		return 200, http.Header{}, b, nil
	}
	h.RequestHeader.Set("Authorization", "Bearer "+sign(jwt.SigningMethodRS256, rsaKey, "k1", good()))
	h.Run()
	if h.Answered || fetches != 1 {
		t.Fatalf("first key: answered %v, fetches %d: %s", h.Answered, fetches, h.ResponseBody)
	}
	current = append(current, jwkRSA("k2", &rotated.PublicKey))
	h.RequestHeader.Set("Authorization", "Bearer "+sign(jwt.SigningMethodRS256, rotated, "k2", good()))
	h.Run()
	if h.Answered || fetches != 2 {
		t.Errorf("rotated key: answered %v, fetches %d", h.Answered, fetches)
	}
	// Unknown kids do not make the filter hammer the IdP.
	for range 3 {
		h.RequestHeader.Set("Authorization", "Bearer "+sign(jwt.SigningMethodRS256, rotated, "k9", good()))
		h.Run()
	}
	if fetches != 2 {
		t.Errorf("%d fetches after unknown kids, want at most one a minute", fetches)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{},
		{Algorithms: []string{"none"}, Keys: baseConfig().Keys},
		{Algorithms: []string{"HS256"}, Keys: []KeyConfig{{Secret: "short"}}},
		{Algorithms: []string{"RS256"}, Keys: []KeyConfig{{PEM: "junk"}}},
		{Algorithms: []string{"RS256"}, JWKS: "{"},
	} {
		if _, err := newVerifier(c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}

// TestTwoCredentialsRefused pins the bypass where a valid token in the
// first Authorization header admitted a request whose second header (or
// cookie) carried a forged alg=none token the upstream could read.
func TestTwoCredentialsRefused(t *testing.T) {
	c := baseConfig()
	c.Cookie = "session"
	configure(t, c)
	valid := sign(jwt.SigningMethodRS256, rsaKey, "rsa1", good())
	forged, _ := jwt.NewWithClaims(jwt.SigningMethodNone, good("sub", "admin")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for name, hdr := range map[string]http.Header{
		"two Authorization headers":  {"Authorization": {"Bearer " + valid, "Bearer " + forged}},
		"two tokens in one header":   {"Authorization": {"Bearer " + valid + ", Bearer " + forged}},
		"two cookies":                {"Cookie": {"session=" + valid, "session=" + forged}},
		"two cookies in one line":    {"Cookie": {"session=" + valid + "; session=" + forged}},
		"a cookie beside the header": {"Authorization": {"Bearer " + valid}, "Cookie": {"session=" + forged}},
	} {
		h := lintel.NewFakeHost()
		h.RequestHeader = hdr
		h.Run()
		if !h.Answered || h.Status != 400 || !strings.Contains(h.ResponseHeader.Get("WWW-Authenticate"), `error="invalid_request"`) {
			t.Errorf("%s: answered %v %d %q", name, h.Answered, h.Status, h.ResponseHeader.Get("WWW-Authenticate"))
		}
	}
	// The same token as header and cookie is one credential.
	h := lintel.NewFakeHost()
	h.RequestHeader = http.Header{"Authorization": {"Bearer " + valid}, "Cookie": {"session=" + valid}}
	h.Run()
	if h.Answered {
		t.Errorf("same token twice: %d %s", h.Status, h.ResponseBody)
	}
}
