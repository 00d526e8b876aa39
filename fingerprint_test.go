package wxcampaign

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"sort"
	"testing"
)

// referenceFingerprint is Fingerprint as json.Marshal defines it.
func referenceFingerprint(t *testing.T, r SubscriptionResult) string {
	sorted := func(ids []string) []string {
		out := dedupe(ids)
		sort.Strings(out)
		return out
	}
	b, err := json.Marshal([]any{r.OpenID, r.Scene, r.BusNo, r.ExtraVariableMap,
		sorted(r.AgreeTemplateIDs), sorted(r.RejectTemplateIDs), sorted(r.BanTemplateIDs), sorted(r.FilterTemplateIDs)})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// TestFingerprintUnchanged: fingerprints are stored, so Fingerprint must
// keep giving what the json.Marshal encoding gave.
func TestFingerprintUnchanged(t *testing.T) {
	for _, r := range []SubscriptionResult{
		{OpenID: "o1", Scene: "add_to_cart", BusNo: "p1", ExtraVariableMap: map[string]any{"saved_price": "21.27", "n": 3.0},
			AgreeTemplateIDs: []string{"T2", "T1", "T2"}, RejectTemplateIDs: []string{}},
		{OpenID: "o<2>", Scene: "降价", ExtraVariableMap: map[string]any{"nested": map[string]any{"a": []any{1.0, "x"}}}},
		{OpenID: "o3", ExtraVariableMap: map[string]any{"n": json.Number("12")}, BanTemplateIDs: []string{"B"}},
		{},
	} {
		if got, want := r.Fingerprint(), referenceFingerprint(t, r); got != want {
			t.Errorf("Fingerprint(%+v) = %s, want %s", r, got, want)
		}
	}
}

// TestFingerprintUnencodable: vars json.Marshal cannot encode (never from
// a decoded body) still give a fingerprint, the same each time, and
// VarsJSON says why they cannot be stored.
func TestFingerprintUnencodable(t *testing.T) {
	r := SubscriptionResult{OpenID: "o1", ExtraVariableMap: map[string]any{"x": math.NaN()}}
	if _, err := r.VarsJSON(); err == nil {
		t.Fatal("VarsJSON of NaN: no error")
	}
	ok := SubscriptionResult{OpenID: "o1", ExtraVariableMap: map[string]any{"x": 1.0}}
	if a, b := r.Fingerprint(), r.Fingerprint(); a != b || a == ok.Fingerprint() || len(a) != 32 {
		t.Errorf("Fingerprint with NaN vars: %q then %q (encodable: %q)", a, b, ok.Fingerprint())
	}
}

// FuzzFingerprint compares Fingerprint with its json.Marshal definition.
func FuzzFingerprint(f *testing.F) {
	f.Add("o1", "cart", "p1", "saved_price", "21.27", 1.5, "T1", "T2")
	f.Add("<o>", "\u2028", "\xff", "", "&", -1e-9, "", "T1")
	f.Fuzz(func(t *testing.T, openid, scene, bus, k, v string, x float64, id1, id2 string) {
		r := SubscriptionResult{OpenID: openid, Scene: scene, BusNo: bus,
			ExtraVariableMap: map[string]any{k: v, k + "x": x}, AgreeTemplateIDs: []string{id2, id1}, RejectTemplateIDs: []string{id1}}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return // json.Marshal cannot encode it: no reference
		}
		if got, want := r.Fingerprint(), referenceFingerprint(t, r); got != want {
			t.Errorf("Fingerprint(%+v) = %s, want %s", r, got, want)
		}
	})
}

func BenchmarkFingerprint(b *testing.B) {
	r := SubscriptionResult{OpenID: "oBench000000001", Scene: "add_to_cart", BusNo: "p000002",
		ExtraVariableMap: map[string]any{"saved_price": "21.27"}, AgreeTemplateIDs: []string{"bDmywsp2oEHjwAadTGKkUJ-eJEiMiOf7H-dZ8wjfw6c"}, RequestID: "bench-000000001"}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Fingerprint()
	}
}
