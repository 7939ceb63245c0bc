package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/devicegate/devicegate/api/internal/pages"
)

// flashCookie carries a flash: what a form's POST did, for the GET page its
// 303 leads to (POST/redirect/GET). Back from that page then never lands
// on the answer to a POST (Chromium's ERR_CACHE_MISS, "Confirm Form
// Resubmission"), and nothing about the outcome rides in the URL.
const flashCookie = "devicegate-flash"

// flashLifetime bounds how long a flash waits for its GET: the redirect is
// followed at once; a flash older than this is ignored.
const flashLifetime = time.Minute

// flash is one outcome to show once: a result page, or the /devices
// page saying which device was disconnected.
type flash struct {
	At       int64            `json:"t"` // Unix seconds it was made
	Path     string           `json:"p"` // the GET path that shows it
	Status   int              `json:"s"`
	Kind     pages.ResultKind `json:"k"`
	Key      string           `json:"m,omitempty"` // pages.Text key
	Args     []string         `json:"a,omitempty"` // its name, value pairs
	Retry    int              `json:"r,omitempty"` // seconds, ResultTooMany
	Device   string           `json:"dv,omitempty"`
	Provider string           `json:"pv,omitempty"`
	Done     string           `json:"d,omitempty"` // /devices: the device disconnected
}

// flashPath is the GET path a POST's outcome is shown at: a verify form's
// at /api/verify (without user_code, which otherwise sends the browser
// to /device), a /devices form's at /devices.
func flashPath(postPath string) string {
	if postPath == "/api/verify" {
		return "/api/verify"
	}
	return "/devices"
}

// redirectWithFlash answers a POST with 303 to the page that shows f.
func (s *server) redirectWithFlash(w http.ResponseWriter, r *http.Request, f flash) error {
	f.At = s.Now().Unix()
	f.Path = flashPath(r.URL.Path)
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	note := base64.RawURLEncoding.EncodeToString(b)
	s.setCookie(w, flashCookie, note+"."+s.Service.FlashMAC(note), flashLifetime)
	http.Redirect(w, r, f.Path, http.StatusSeeOther)
	return nil
}

// flashFor is pe as a flash.
func flashFor(pe pageError) flash {
	f := flash{Status: pe.status, Kind: pe.kind, Key: pe.msg.Key, Retry: int((pe.retry + time.Second - 1) / time.Second)}
	for _, a := range pe.msg.Args {
		f.Args = append(f.Args, fmt.Sprint(a))
	}
	return f
}

// takeFlash returns the flash this GET is to show, if any, and clears it:
// it is shown once.
func (s *server) takeFlash(w http.ResponseWriter, r *http.Request) (flash, bool) {
	v := s.cookie(r, flashCookie)
	if v == "" {
		return flash{}, false
	}
	s.setCookie(w, flashCookie, "", -time.Second)
	note, mac, ok := strings.Cut(v, ".")
	if !ok || len(note) > 4096 || !s.Service.CheckFlashMAC(note, mac) {
		return flash{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(note)
	var f flash
	if err != nil || json.Unmarshal(b, &f) != nil {
		return flash{}, false
	}
	age := s.Now().Sub(time.Unix(f.At, 0))
	if age < -time.Minute || age > flashLifetime || f.Path != flashPath(r.URL.Path) {
		return flash{}, false
	}
	return f, true
}

// showFlash writes the page f describes, in the request's language.
func (s *server) showFlash(w http.ResponseWriter, r *http.Request, f flash) error {
	loc := pages.Locale{Lang: langOf(r)}
	if f.Done != "" {
		return s.Pages.Devices(w, http.StatusOK, loc, pages.DevicesData{View: pages.DevicesDone, DoneDevice: f.Done})
	}
	var args []any
	for _, a := range f.Args {
		args = append(args, a)
	}
	d := pages.ResultData{Kind: f.Kind, Device: f.Device, Provider: f.Provider, RetryAfter: time.Duration(f.Retry) * time.Second}
	if f.Key != "" {
		d.Message = pages.Msg(f.Key, args...)
	}
	if f.Retry > 0 {
		retryAfter(w, d.RetryAfter)
	}
	status := f.Status
	if status < 200 || status > 599 {
		status = http.StatusOK
	}
	return s.Pages.Result(w, status, loc, d)
}
