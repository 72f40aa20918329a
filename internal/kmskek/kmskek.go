// Package kmskek makes the key-encryption key (package sealed) from an AWS
// KMS key, for AWS mode: no key material is then given to Cairn at all.
//
// The first replica asks KMS for an AES-256 data key (GenerateDataKey),
// stores the copy KMS encrypted in the control-plane database and keeps
// the plaintext in memory only; every replica reads the stored copy and has
// KMS decrypt it (Decrypt), so all seal and open with one key, and the
// database alone opens nothing. Both calls carry the encryption context
// {"cairn": "key-encryption-key"}, so the data key cannot be decrypted for
// another purpose without saying so (and CloudTrail shows it).
//
// Changing the KMS key makes a new data key: values sealed under the old
// one no longer open. Re-encrypting them under a new KMS key is not
// supported yet.
//
// Errors: Load wraps store and KMS errors, prefixed "kmskek:". Replicas
// may call Load at once: one data key is stored and all use it.
package kmskek

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/sealed"
)

// ErrNotFound is returned by Store.WrappedKeyGet when no data key is
// stored for the KMS key.
var ErrNotFound = errors.New("kmskek: no stored data key")

// Store keeps the wrapped data keys. Adapters translate their driver
// errors (no rows: ErrNotFound).
type Store interface {
	// WrappedKeyGet returns the wrapped data key of kmsKeyARN.
	WrappedKeyGet(ctx context.Context, kmsKeyARN string) ([]byte, error)
	// WrappedKeyInsert stores wrapped for kmsKeyARN unless one is stored.
	WrappedKeyInsert(ctx context.Context, kmsKeyARN string, wrapped []byte, at time.Time) error
}

// Config configures Load.
type Config struct {
	// Store is required.
	Store Store
	// KeyARN names the KMS key: a key ARN or an alias ARN, which names
	// the Region too. Required.
	KeyARN string
	// AWS holds the client settings (endpoint, retries, call counter).
	AWS awsclient.Settings
}

// encryptionContext is bound to the data key by KMS.
var encryptionContext = map[string]string{"cairn": "key-encryption-key"}

// Load returns a Keyring whose one key is the database's data key of
// cfg.KeyARN, making and storing one first if there is none.
func Load(ctx context.Context, cfg Config) (*sealed.Keyring, error) {
	if cfg.Store == nil {
		return nil, errors.New("kmskek: Store is required")
	}
	a, err := arn.Parse(cfg.KeyARN)
	if err != nil || a.Service != "kms" || a.Region == "" ||
		!(strings.HasPrefix(a.Resource, "key/") || strings.HasPrefix(a.Resource, "alias/")) {
		return nil, fmt.Errorf("kmskek: %q is not a KMS key or alias ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)", cfg.KeyARN)
	}
	b, err := cfg.AWS.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("kmskek: %w", err)
	}
	client := kms.NewFromConfig(b.AWS, func(o *kms.Options) {
		o.Region = a.Region
		o.BaseEndpoint = b.BaseEndpoint(o.BaseEndpoint)
	})

	wrapped, err := cfg.Store.WrappedKeyGet(ctx, cfg.KeyARN)
	if errors.Is(err, ErrNotFound) {
		out, err := client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
			KeyId: aws.String(cfg.KeyARN), KeySpec: types.DataKeySpecAes256, EncryptionContext: encryptionContext,
		})
		if err != nil {
			return nil, fmt.Errorf("kmskek: generate data key: %w", err)
		}
		clear(out.Plaintext) // the stored copy is the one every replica uses
		if err := cfg.Store.WrappedKeyInsert(ctx, cfg.KeyARN, out.CiphertextBlob, time.Now()); err != nil {
			return nil, fmt.Errorf("kmskek: store data key: %w", err)
		}
		wrapped, err = cfg.Store.WrappedKeyGet(ctx, cfg.KeyARN)
		if err != nil {
			return nil, fmt.Errorf("kmskek: read data key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("kmskek: read data key: %w", err)
	}
	out, err := client.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob: wrapped, KeyId: aws.String(cfg.KeyARN), EncryptionContext: encryptionContext,
	})
	if err != nil {
		return nil, fmt.Errorf("kmskek: decrypt data key: %w", err)
	}
	key, err := sealed.NewKey(out.Plaintext)
	clear(out.Plaintext)
	if err != nil {
		return nil, fmt.Errorf("kmskek: %w", err)
	}
	return sealed.NewKeyring(key), nil
}
