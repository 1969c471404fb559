//go:build !wasip1

package lintel

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"math/big"
)

// verifySignature is the host's verify_signature, natively, for plugin
// tests: 1 valid, 0 not, -1 unsupported.
func verifySignature(alg string, key, msg, sig []byte) int32 {
	hash := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}
	if alg == "EdDSA" {
		pub, err := x509.ParsePKIXPublicKey(key)
		ed, ok := pub.(ed25519.PublicKey)
		if err != nil || !ok {
			return -1
		}
		return b2i(ed25519.Verify(ed, msg, sig))
	}
	if len(alg) != 5 {
		return -1
	}
	h, ok := hash[alg[2:]]
	if !ok {
		return -1
	}
	if alg[:2] == "HS" {
		mac := hmac.New(h.New, key)
		mac.Write(msg)
		return b2i(hmac.Equal(sig, mac.Sum(nil)))
	}
	pub, err := x509.ParsePKIXPublicKey(key)
	if err != nil {
		return -1
	}
	d := h.New()
	d.Write(msg)
	digest := d.Sum(nil)
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		switch alg[:2] {
		case "RS":
			return b2i(rsa.VerifyPKCS1v15(pub, h, digest, sig) == nil)
		case "PS":
			return b2i(rsa.VerifyPSS(pub, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil)
		}
	case *ecdsa.PublicKey:
		bits := map[string]int{"256": 256, "384": 384, "512": 521}[alg[2:]]
		if alg[:2] != "ES" || pub.Curve.Params().BitSize != bits {
			return -1
		}
		size := (bits + 7) / 8
		if len(sig) != 2*size {
			return 0
		}
		return b2i(ecdsa.Verify(pub, digest, new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])))
	}
	return -1
}

func b2i(ok bool) int32 {
	if ok {
		return 1
	}
	return 0
}
