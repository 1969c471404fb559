package wasm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"
)

// TestVerifySignature: verify_signature checks each JWS algorithm
// natively, refuses a key of the wrong kind (-1) and an algorithm it does
// not know (-1), and reports a signature that does not match as 0.
func TestVerifySignature(t *testing.T) {
	msg := []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9")
	digest := sha256.Sum256(msg)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)
	der := func(pub any) []byte {
		b, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rs, _ := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, digest[:])
	ps, _ := rsa.SignPSS(rand.Reader, rsaKey, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	r, s, _ := ecdsa.Sign(rand.Reader, ecKey, digest[:])
	es := make([]byte, 64)
	r.FillBytes(es[:32])
	s.FillBytes(es[32:])
	mac := hmac.New(sha256.New, []byte("secret"))
	mac.Write(msg)
	hs := mac.Sum(nil)
	ed := ed25519.Sign(edKey, msg)
	flip := func(b []byte) []byte { c := append([]byte(nil), b...); c[len(c)-1] ^= 1; return c }

	var keys signatureKeys
	for _, c := range []struct {
		name, alg string
		key, sig  []byte
		want      int32
	}{
		{"RS256", "RS256", der(&rsaKey.PublicKey), rs, 1},
		{"RS256 tampered", "RS256", der(&rsaKey.PublicKey), flip(rs), 0},
		{"PS256", "PS256", der(&rsaKey.PublicKey), ps, 1},
		{"ES256", "ES256", der(&ecKey.PublicKey), es, 1},
		{"ES256 tampered", "ES256", der(&ecKey.PublicKey), flip(es), 0},
		{"ES256 short signature", "ES256", der(&ecKey.PublicKey), es[:63], 0},
		{"EdDSA", "EdDSA", der(edPub), ed, 1},
		{"HS256", "HS256", []byte("secret"), hs, 1},
		{"HS256 other secret", "HS256", []byte("secreT"), hs, 0},
		{"RS256 with an EC key", "RS256", der(&ecKey.PublicKey), rs, -1},
		{"ES384 with a P-256 key", "ES384", der(&ecKey.PublicKey), es, -1},
		{"EdDSA with an RSA key", "EdDSA", der(&rsaKey.PublicKey), ed, -1},
		{"not a key", "RS256", []byte("not DER"), rs, -1},
		{"unknown algorithm", "none", nil, nil, -1},
		{"RS257", "RS257", der(&rsaKey.PublicKey), rs, -1},
	} {
		if got := keys.verify(c.alg, c.key, msg, c.sig); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	if n := len(keys.keys); n != 3 {
		t.Errorf("%d keys parsed and kept, want 3 (RSA, EC, Ed25519; no HMAC secret, nothing unparsable)", n)
	}
}
