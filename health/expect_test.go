package health

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseStatusSet(t *testing.T) {
	for _, tc := range []struct {
		in        string
		match     []int
		noMatch   []int
		canonical string
	}{
		{"2xx", []int{200, 204, 299}, []int{199, 300, 0, 600}, "2xx"},
		{"200-399", []int{200, 302, 399}, []int{199, 400}, "2xx,3xx"},
		{"200,204", []int{200, 204}, []int{201, 203}, "200,204"},
		{" 2xx , 301-302 ", []int{250, 301, 302}, []int{300, 303}, "2xx,301-302"},
		{"150-250", []int{150, 199, 200, 250}, []int{149, 251}, "150-250"},
		{"150-350", []int{150, 250, 350}, []int{149, 351}, "150-199,2xx,300-350"},
		{"100-599", []int{100, 599}, []int{99, 600}, "1xx,2xx,3xx,4xx,5xx"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			s, err := ParseStatusSet(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.match {
				if !s.Match(c) {
					t.Errorf("Match(%d) = false, want true", c)
				}
			}
			for _, c := range tc.noMatch {
				if s.Match(c) {
					t.Errorf("Match(%d) = true, want false", c)
				}
			}
			if got := s.String(); got != tc.canonical {
				t.Errorf("String() = %q, want %q", got, tc.canonical)
			}
		})
	}
}

func TestParseStatusSetRejects(t *testing.T) {
	for in, want := range map[string]string{
		"":        "health: expect_status is empty",
		"6xx":     `health: expect_status "6xx": "6xx" is not a status code in 100..599 or a class like "2xx"`,
		"2XX":     `health: expect_status "2XX": "2XX" is not a status code in 100..599 or a class like "2xx"`,
		"399-200": `health: expect_status "399-200": range "399-200" runs backwards`,
		"200,":    `health: expect_status "200,": "" is not a status code in 100..599 or a class like "2xx"`,
		"99":      `health: expect_status "99": "99" is not a status code in 100..599 or a class like "2xx"`,
		"200-":    `health: expect_status "200-": "" is not a status code in 100..599 or a class like "2xx"`,
	} {
		if _, err := ParseStatusSet(in); err == nil || err.Error() != want {
			t.Errorf("ParseStatusSet(%q) error = %v, want %q", in, err, want)
		}
	}
}

// FuzzParseStatusSet checks that the parser never panics, accepts only
// codes in 100..599 and that String gives a spelling that parses back to
// the same set.
func FuzzParseStatusSet(f *testing.F) {
	for _, s := range []string{"2xx", "200-399", "200,204", "1xx,5xx", "150-250", "", "-", ",,", "5xx-6xx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseStatusSet(in)
		if err != nil {
			return
		}
		if s == (StatusSet{}) {
			t.Fatalf("ParseStatusSet(%q) accepted an empty set", in)
		}
		for c := range 640 {
			if (c < 100 || c > 599) && s.bits[c/64]&(1<<(c%64)) != 0 {
				t.Fatalf("ParseStatusSet(%q) holds %d", in, c)
			}
		}
		back, err := ParseStatusSet(s.String())
		if err != nil {
			t.Fatalf("String() = %q of ParseStatusSet(%q) does not parse: %v", s.String(), in, err)
		}
		if diff := cmp.Diff(s.String(), back.String()); diff != "" || back != s {
			t.Fatalf("round trip of %q changed the set (-want +got):\n%s", in, diff)
		}
	})
}
