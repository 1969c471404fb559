package main

import (
	"crypto/x509"
	"errors"

	"github.com/golang-jwt/jwt/v5"

	lintel "github.com/lintelhq/lintel/sdk/go"
)

// hostMethod is a JWS algorithm whose signature check runs natively in
// the host (lintel.VerifySignature), about ten times faster than the
// same arithmetic in this guest. golang-jwt still parses the token and
// this plugin still decides everything else: the algorithms allowed,
// which key (by kid and kind), the claims.
type hostMethod struct{ alg string }

func init() {
	for alg := range supported {
		jwt.RegisterSigningMethod(alg, func() jwt.SigningMethod { return hostMethod{alg} })
	}
}

func (m hostMethod) Alg() string { return m.alg }

func (m hostMethod) Sign(string, any) ([]byte, error) {
	return nil, errors.New("jwt-auth verifies tokens; it does not sign them")
}

// Verify checks sig with the *key keyFunc found, which must fit the
// algorithm (an RSA key is never an HMAC secret).
func (m hostMethod) Verify(signingString string, sig []byte, k any) error {
	key, ok := k.(*key)
	if !ok || !key.fits(m.alg) {
		return jwt.ErrInvalidKeyType
	}
	material, err := key.material()
	if err != nil {
		return err
	}
	valid, err := lintel.VerifySignature(m.alg, material, []byte(signingString), sig)
	switch {
	case err != nil:
		return err
	case !valid:
		return jwt.ErrSignatureInvalid
	}
	return nil
}

// material is what the host verifies with: an HMAC secret as it is, a
// public key as PKIX DER (computed once per key).
func (k *key) material() ([]byte, error) {
	if secret, ok := k.pub.([]byte); ok {
		return secret, nil
	}
	if k.der == nil {
		der, err := x509.MarshalPKIXPublicKey(k.pub)
		if err != nil {
			return nil, err
		}
		k.der = der
	}
	return k.der, nil
}
