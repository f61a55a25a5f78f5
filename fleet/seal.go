package fleet

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"golang.org/x/crypto/chacha20poly1305"
)

// sealVersion is the first byte of every sealed value, so that a later
// format can be told apart.
const sealVersion = 1

// errSealed reports a value that did not open: truncated, garbage, sealed
// by another fleet's Secret, or copied from another key.
var errSealed = errors.New("fleet: value does not open under this fleet's secret and key name")

// sealer seals values with XChaCha20-Poly1305 under a key derived from the
// fleet's Secret for one purpose. Its 24-byte random nonces can be drawn
// for as many values as a fleet will ever write without a collision worth
// counting, which AES-GCM's 12 bytes cannot promise over billions of
// sessions.
type sealer struct {
	purpose string
	key     []byte
}

func newSealer(secret []byte, purpose string) (*sealer, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, "tlsemit fleet v1 "+purpose, chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	return &sealer{purpose: purpose, key: key}, nil
}

// seal encrypts plaintext for the Redis key name: the name is bound as
// associated data, so the value opens under that name only.
func (s *sealer) seal(name string, plaintext []byte) []byte {
	aead, _ := chacha20poly1305.NewX(s.key) // the key has the right size
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:])
	return aead.Seal(out, out[1:], plaintext, s.ad(name))
}

// open decrypts a value read under name.
func (s *sealer) open(name string, value []byte) ([]byte, error) {
	aead, _ := chacha20poly1305.NewX(s.key)
	if len(value) < 1+aead.NonceSize()+aead.Overhead() || value[0] != sealVersion {
		return nil, errSealed
	}
	nonce, ct := value[1:1+aead.NonceSize()], value[1+aead.NonceSize():]
	pt, err := aead.Open(nil, nonce, ct, s.ad(name))
	if err != nil {
		return nil, errSealed
	}
	return pt, nil
}

func (s *sealer) ad(name string) []byte {
	return []byte("tlsemit fleet v1\x00" + s.purpose + "\x00" + name)
}

// keyID names the Secret without revealing it: fleets sharing a Prefix but
// not a Secret keep their ticket keys under different names.
func (s *sealer) keyID() string {
	id, _ := hkdf.Key(sha256.New, s.key, nil, "tlsemit fleet v1 key id", 6)
	return hex.EncodeToString(id)
}
