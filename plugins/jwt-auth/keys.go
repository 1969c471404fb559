package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// key is one verification key: its kind decides which algorithms it may
// verify, so an HS256 token can never be checked against an RSA public
// key taken as an HMAC secret (key confusion).
type key struct {
	kid string
	alg string // the key's declared algorithm, if any
	pub any    // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte (HMAC)
	der []byte // pub as PKIX DER, once computed (material)
}

// fits reports whether the key may verify a token signed with alg.
func (k *key) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return alg == map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[pub.Curve.Params().Name]
	case ed25519.PublicKey:
		return alg == "EdDSA"
	case []byte:
		return strings.HasPrefix(alg, "HS")
	}
	return false
}

// keySet holds keys by kid; keys without kid serve tokens without kid.
type keySet struct {
	byKID  map[string]*key
	noKID  []*key
	loaded bool
}

func newKeySet() *keySet { return &keySet{byKID: map[string]*key{}} }

func (s *keySet) add(k *key) {
	if k.kid != "" {
		s.byKID[k.kid] = k
	} else {
		s.noKID = append(s.noKID, k)
	}
	s.loaded = true
}

// find returns the key for a token's kid and alg.
func (s *keySet) find(kid, alg string) (*key, error) {
	if kid != "" {
		k, ok := s.byKID[kid]
		if !ok {
			return nil, errUnknownKID
		}
		if !k.fits(alg) {
			return nil, fmt.Errorf("key %q cannot verify %s", kid, alg)
		}
		return k, nil
	}
	var found *key
	for _, k := range append(s.noKID, values(s.byKID)...) {
		if k.fits(alg) {
			if found != nil {
				return nil, errors.New("token has no kid and several keys fit")
			}
			found = k
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no key for %s", alg)
	}
	return found, nil
}

func values(m map[string]*key) []*key {
	out := make([]*key, 0, len(m))
	for _, k := range m {
		out = append(out, k)
	}
	return out
}

var errUnknownKID = errors.New("unknown key id")

// KeyConfig is an inline key of the config.
type KeyConfig struct {
	KID    string `json:"kid"`
	Alg    string `json:"alg"`
	PEM    string `json:"pem"`    // a PEM public key (RSA, EC, Ed25519)
	Secret string `json:"secret"` // an HMAC secret
}

func (c KeyConfig) key() (*key, error) {
	k := &key{kid: c.KID, alg: c.Alg}
	switch {
	case c.Secret != "" && c.PEM != "":
		return nil, errors.New("a key has either pem or secret")
	case c.Secret != "":
		if len(c.Secret) < 32 {
			return nil, errors.New("an HMAC secret must be at least 32 bytes")
		}
		k.pub = []byte(c.Secret)
	case c.PEM != "":
		block, _ := pem.Decode([]byte(c.PEM))
		if block == nil {
			return nil, errors.New("pem: no PEM block")
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pem: %v", err)
		}
		k.pub = pub
	default:
		return nil, errors.New("a key needs pem or secret")
	}
	return k, nil
}

// jwk is one key of a JWKS document (RFC 7517, 7518, 8037).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	K   string `json:"k"`
}

// parseJWKS adds the signature keys of a JWKS document to s; keys it
// cannot use are skipped and reported.
func parseJWKS(doc []byte, s *keySet) (skipped []string, err error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %v", err)
	}
	for _, j := range set.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		k, err := j.key()
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", j.Kid, err))
			continue
		}
		s.add(k)
	}
	return skipped, nil
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func (j jwk) key() (*key, error) {
	k := &key{kid: j.Kid, alg: j.Alg}
	switch j.Kty {
	case "RSA":
		n, err1 := b64(j.N)
		e, err2 := b64(j.E)
		if err1 != nil || err2 != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA key")
		}
		k.pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	case "EC":
		curve := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[j.Crv]
		x, err1 := b64(j.X)
		y, err2 := b64(j.Y)
		if curve == nil || err1 != nil || err2 != nil {
			return nil, errors.New("bad EC key")
		}
		pub := &ecdsa.PublicKey{Curve: curve, X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
		if !curve.IsOnCurve(pub.X, pub.Y) {
			return nil, errors.New("EC point not on curve")
		}
		k.pub = pub
	case "OKP":
		x, err := b64(j.X)
		if j.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad OKP key (only Ed25519)")
		}
		k.pub = ed25519.PublicKey(x)
	case "oct":
		secret, err := b64(j.K)
		if err != nil || len(secret) < 32 {
			return nil, errors.New("bad oct key (at least 32 bytes)")
		}
		k.pub = secret
	default:
		return nil, fmt.Errorf("unsupported kty %q", j.Kty)
	}
	return k, nil
}
