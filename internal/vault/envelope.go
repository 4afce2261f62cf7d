package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
)

const (
	// formatV1 is the first byte of every sealed blob: AES-256-GCM with a
	// random 96-bit nonce.
	formatV1  = 0x01
	nonceSize = 12
	tagSize   = 16
	// dataKeySize is the per-version data key length: AES-256.
	dataKeySize = 32
)

// checkPlaintext is sealed under each master key version to recognise it.
const checkPlaintext = "keygate master key check v1"

// errOpen is the one error open returns for any blob that does not
// authenticate; callers decide whether that means corrupt or wrong key.
var errOpen = errors.New("message authentication failed")

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes key: %w", err)
	}
	return cipher.NewGCM(block)
}

// seal returns formatV1 || nonce || AES-256-GCM(key, nonce, plaintext, aad).
func seal(key, plaintext, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+tagSize)
	out[0] = formatV1
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	return aead.Seal(out, out[1:1+nonceSize], plaintext, aad), nil
}

// open reverses seal. Any blob that is short, has an unknown format byte or
// fails authentication yields errOpen; it never returns unauthenticated
// plaintext.
func open(key, blob, aad []byte) ([]byte, error) {
	if len(blob) < 1+nonceSize+tagSize || blob[0] != formatV1 {
		return nil, errOpen
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, blob[1:1+nonceSize], blob[1+nonceSize:], aad)
	if err != nil {
		return nil, errOpen
	}
	return pt, nil
}

// Names cannot contain NUL (see validName), so the NUL-separated AAD fields
// are unambiguous.

func valueAAD(name string, version int) []byte {
	return []byte("keygate/secret\x00" + name + "\x00" + strconv.Itoa(version))
}

func dataKeyAAD(name string, version, masterVersion int) []byte {
	return []byte("keygate/datakey\x00" + name + "\x00" + strconv.Itoa(version) + "\x00" + strconv.Itoa(masterVersion))
}

func checkAAD(masterVersion int) []byte {
	return []byte("keygate/check\x00" + strconv.Itoa(masterVersion))
}

// sealValue encrypts value for name/version under a fresh data key and wraps
// the data key under master key mv. The data key is cleared before return.
func sealValue(mk []byte, mv int, name string, version int, value []byte) (wrapped, ciphertext []byte, err error) {
	dk := make([]byte, dataKeySize)
	defer clear(dk)
	if _, err := rand.Read(dk); err != nil {
		return nil, nil, fmt.Errorf("generate data key: %w", err)
	}
	ciphertext, err = seal(dk, value, valueAAD(name, version))
	if err != nil {
		return nil, nil, err
	}
	wrapped, err = seal(mk, dk, dataKeyAAD(name, version, mv))
	if err != nil {
		return nil, nil, err
	}
	return wrapped, ciphertext, nil
}

// unwrapKey opens a wrapped data key. The caller must clear the result.
func unwrapKey(mk, wrapped []byte, name string, version, mv int) ([]byte, error) {
	dk, err := open(mk, wrapped, dataKeyAAD(name, version, mv))
	if err != nil {
		return nil, err
	}
	if len(dk) != dataKeySize {
		clear(dk)
		return nil, errOpen
	}
	return dk, nil
}

func sealCheck(mk []byte, mv int) ([]byte, error) {
	return seal(mk, []byte(checkPlaintext), checkAAD(mv))
}

func openCheck(mk, check []byte, mv int) bool {
	pt, err := open(mk, check, checkAAD(mv))
	return err == nil && subtle.ConstantTimeCompare(pt, []byte(checkPlaintext)) == 1
}
