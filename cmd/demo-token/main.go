// Command demo-token mints a JWT for the demo gateway: RS256, signed with
// the demo key in testdata/keys (never use that key for anything real).
//
//	go run ./cmd/demo-token -sub alice -ttl 1h
package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	keyFile := flag.String("key", "testdata/keys/demo-rsa.pem", "PEM private key (PKCS#8, RSA)")
	kid := flag.String("kid", "demo", "key id")
	sub := flag.String("sub", "alice", "subject")
	iss := flag.String("iss", "https://idp.lintel.demo", "issuer")
	aud := flag.String("aud", "lintel-demo", "audience")
	ttl := flag.Duration("ttl", time.Hour, "lifetime")
	flag.Parse()

	b, err := os.ReadFile(*keyFile)
	if err != nil {
		fail(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		fail(fmt.Errorf("%s: no PEM block", *keyFile))
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		fail(err)
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		fail(fmt.Errorf("%s: not an RSA key", *keyFile))
	}
	now := time.Now()
	enc := func(v any) string {
		j, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(j)
	}
	signing := enc(map[string]string{"alg": "RS256", "typ": "JWT", "kid": *kid}) + "." +
		enc(map[string]any{"sub": *sub, "iss": *iss, "aud": *aud, "iat": now.Unix(), "exp": now.Add(*ttl).Unix()})
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		fail(err)
	}
	fmt.Println(signing + "." + base64.RawURLEncoding.EncodeToString(sig))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "demo-token:", err)
	os.Exit(1)
}
