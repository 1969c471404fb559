package wasm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/x509"
	"math/big"
	"sync"

	"github.com/tetratelabs/wazero/api"
)

// maxSigned bounds the message of one verify_signature call: hashing is
// host work the guest's fuel does not count.
const maxSigned = 1 << 20

// hostVerifySignature checks a signature for the guest: 1 valid, 0 not,
// -1 an algorithm the host does not know or a key that is not one for
// it. The guest decides what to verify and what a result means (the
// algorithms it accepts, which key, the claims); the host only does the
// arithmetic, natively, many times faster than a guest can.
func hostVerifySignature(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	alg := readString(mod, uint32(stack[0]), uint32(stack[1]), fnVerifySignature)
	if uint32(stack[3]) > 16<<10 || uint32(stack[5]) > maxSigned || uint32(stack[7]) > 16<<10 {
		failLimit("%s: a key or signature over 16 KiB, or a message over %d bytes", fnVerifySignature, maxSigned)
	}
	key := read(mod, uint32(stack[2]), uint32(stack[3]), fnVerifySignature)
	msg := read(mod, uint32(stack[4]), uint32(stack[5]), fnVerifySignature)
	sig := read(mod, uint32(stack[6]), uint32(stack[7]), fnVerifySignature)
	stack[0] = i32Result(s.f.keys.verify(alg, key, msg, sig))
}

// signatureKeys are the public keys a filter's guest has had the host
// parse, by their DER, so a key is parsed once, not per token.
type signatureKeys struct {
	mu   sync.Mutex
	keys map[string]any
}

// maxSignatureKeys bounds a filter's parsed keys; a guest passing new
// keys without end empties the cache instead of growing it.
const maxSignatureKeys = 256

func (k *signatureKeys) parse(der []byte) (any, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if pub, ok := k.keys[string(der)]; ok {
		return pub, true
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, false
	}
	if k.keys == nil || len(k.keys) >= maxSignatureKeys {
		k.keys = map[string]any{}
	}
	k.keys[string(der)] = pub
	return pub, true
}

// jwsAlgorithm is what verify needs to know of a JWS algorithm (RFC 7518).
type jwsAlgorithm struct {
	family string // HS, RS, PS, ES or Ed
	hash   crypto.Hash
	curve  int // ES: the curve's bit size
}

var jwsAlgorithms = map[string]jwsAlgorithm{
	"HS256": {"HS", crypto.SHA256, 0}, "HS384": {"HS", crypto.SHA384, 0}, "HS512": {"HS", crypto.SHA512, 0},
	"RS256": {"RS", crypto.SHA256, 0}, "RS384": {"RS", crypto.SHA384, 0}, "RS512": {"RS", crypto.SHA512, 0},
	"PS256": {"PS", crypto.SHA256, 0}, "PS384": {"PS", crypto.SHA384, 0}, "PS512": {"PS", crypto.SHA512, 0},
	"ES256": {"ES", crypto.SHA256, 256}, "ES384": {"ES", crypto.SHA384, 384}, "ES512": {"ES", crypto.SHA512, 521},
	"EdDSA": {"Ed", 0, 0},
}

// verify checks sig over msg with key (PKIX DER; the secret for HS*)
// for a JWS algorithm: 1, 0, or -1 for an unknown algorithm or a key of
// the wrong kind.
func (k *signatureKeys) verify(name string, key, msg, sig []byte) int32 {
	alg, ok := jwsAlgorithms[name]
	if !ok {
		return resultError
	}
	if alg.family == "HS" {
		mac := hmac.New(alg.hash.New, key)
		mac.Write(msg)
		return result(hmac.Equal(sig, mac.Sum(nil)))
	}
	pub, ok := k.parse(key)
	if !ok {
		return resultError
	}
	if alg.family == "Ed" {
		ed, ok := pub.(ed25519.PublicKey)
		if !ok {
			return resultError
		}
		return result(ed25519.Verify(ed, msg, sig))
	}
	d := alg.hash.New()
	d.Write(msg)
	digest := d.Sum(nil)
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		switch alg.family {
		case "RS":
			return result(rsa.VerifyPKCS1v15(pub, alg.hash, digest, sig) == nil)
		case "PS":
			return result(rsa.VerifyPSS(pub, alg.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil)
		}
	case *ecdsa.PublicKey:
		if alg.family != "ES" || pub.Curve.Params().BitSize != alg.curve {
			return resultError
		}
		size := (alg.curve + 7) / 8
		if len(sig) != 2*size { // JWS: r and s, each of the curve's size
			return 0
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		return result(ecdsa.Verify(pub, digest, r, s))
	}
	return resultError
}

func result(ok bool) int32 {
	if ok {
		return 1
	}
	return 0
}
