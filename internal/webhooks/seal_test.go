package webhooks_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/sealed"
	"github.com/cairn-cdp/cairn/internal/webhooks"
)

// TestSecretsAreSealed: an endpoint's secrets (the current one and, after
// a rotation, the previous one) are stored sealed under the key-encryption
// key, bound to their endpoint, and the deliveries are still signed by the
// secrets the API showed.
func TestSecretsAreSealed(t *testing.T) {
	h := newHarness(t)
	rc := newReceiver(t)
	rc.set(status(200))
	url, types := rc.URL(), []string{webhooks.ProfileCreated}
	e, first, err := h.svc.Create(t.Context(), audit.Event{}, "ten_a", webhooks.EndpointInput{URL: &url, EventTypes: &types})
	if err != nil {
		t.Fatal(err)
	}
	_, second, err := h.svc.RotateSecret(t.Context(), audit.Event{}, "ten_a", e.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := h.store.WebhookEndpointGet(t.Context(), "ten_a", e.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{stored.Secret, stored.PreviousSecret} {
		if !sealed.IsSealed(v) || strings.Contains(v, first) || strings.Contains(v, second) {
			t.Errorf("stored secret %q is not sealed", v)
		}
	}
	if got, err := h.keys.Open(stored.Secret, []byte("webhook endpoint secret\x00"+e.ID)); err != nil || string(got) != second {
		t.Errorf("the stored secret opens to %q, %v", got, err)
	}
	if _, err := h.keys.Open(stored.Secret, []byte("webhook endpoint secret\x00wh_other")); !errors.Is(err, sealed.ErrOpen) {
		t.Errorf("opened under another endpoint's ID: %v", err)
	}
	testSignedBy(t, h, rc, e, first, second)
}

// testSignedBy sends a test event to e and checks that each secret signed
// the request rc got.
func testSignedBy(t *testing.T, h *harness, rc *receiver, e webhooks.Endpoint, secrets ...string) {
	t.Helper()
	if _, err := h.svc.Test(t.Context(), audit.Event{}, e.TenantID, e.ID); err != nil {
		t.Fatal(err)
	}
	h.wait(1)
	r := <-rc.got
	for _, secret := range secrets {
		if err := webhooks.Verify(secret, r.header, r.body, h.clock.Now(), time.Minute); err != nil {
			t.Errorf("delivery not signed by %.10s...: %v", secret, err)
		}
	}
}

// TestSealStored: secrets an older version stored as plaintext are sealed
// by SealStored (a second run finds nothing), without a new version, and
// sign as before.
func TestSealStored(t *testing.T) {
	h := newHarness(t)
	rc := newReceiver(t)
	rc.set(status(200))
	e := h.endpoint("ten_a", rc.URL(), webhooks.ProfileCreated)
	legacy, previous := webhooks.NewSecret(), webhooks.NewSecret()
	// As an older version left it: plaintext, in both columns.
	expires := h.clock.Now().Add(time.Hour)
	e.Secret, e.PreviousSecret, e.PreviousSecretExpiresAt = legacy, previous, &expires
	e, err := h.store.WebhookEndpointUpdate(t.Context(), e, audit.Event{})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := h.svc.SealStored(t.Context()); err != nil || n != 1 {
		t.Fatalf("SealStored: %d %v", n, err)
	}
	if n, err := h.svc.SealStored(t.Context()); err != nil || n != 0 {
		t.Fatalf("second SealStored: %d %v", n, err)
	}
	stored, err := h.store.WebhookEndpointGet(t.Context(), "ten_a", e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !sealed.IsSealed(stored.Secret) || !sealed.IsSealed(stored.PreviousSecret) || stored.Version != e.Version {
		t.Fatalf("after SealStored: %+v", stored)
	}
	testSignedBy(t, h, rc, e, legacy, previous)
}

// TestUnknownKeyFailsTheAttempt: a secret sealed under a key-encryption key
// the server lacks fails the attempt, which stays pending for a retry
// (the operator gives the key back), rather than sending anything. An
// operator who lost the key rotates the secret: the new one signs alone,
// since the previous one cannot.
func TestUnknownKeyFailsTheAttempt(t *testing.T) {
	h := newHarness(t)
	rc := newReceiver(t)
	rc.set(status(200))
	e := h.endpoint("ten_a", rc.URL(), webhooks.ProfileCreated)
	e.Secret = newKeyring(t).Seal([]byte(webhooks.NewSecret()), []byte("webhook endpoint secret\x00"+e.ID))
	if _, err := h.store.WebhookEndpointUpdate(t.Context(), e, audit.Event{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Test(t.Context(), audit.Event{}, "ten_a", e.ID); err != nil {
		t.Fatal(err)
	}
	a := h.wait(1)[0]
	if a.res.Err == nil || !errors.Is(a.res.Err, sealed.ErrUnknownKey) || a.res.Status != 0 {
		t.Fatalf("attempt under an unknown key: %+v", a.res)
	}
	select {
	case r := <-rc.got:
		t.Fatalf("a request went out unsigned: %+v", r)
	default:
	}
	if ds := h.deliveries(e, webhooks.StatusPending); len(ds) != 1 || !strings.Contains(ds[0].LastError, "unknown key") {
		t.Fatalf("the delivery is not pending for a retry: %+v", ds)
	}

	_, secret, err := h.svc.RotateSecret(t.Context(), audit.Event{}, "ten_a", e.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The retry of the pending delivery and the new test both go out,
	// signed by the new secret alone.
	h.next(time.Hour)
	testSignedBy(t, h, rc, e, secret)
	for _, a := range h.wait(1) {
		if !a.res.Delivered() {
			t.Errorf("after the rotation: %+v", a.res)
		}
	}
	r := <-rc.got
	if n := strings.Count(r.signature, "v1,"); n != 1 {
		t.Errorf("%d signatures after the rotation, want the new secret's only", n)
	}
}
