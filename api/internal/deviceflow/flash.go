package deviceflow

import "crypto/subtle"

// kindFlash labels the MAC of a flash: the one-time note a form's answer
// leaves for the page it redirects to.
const kindFlash = "flash"

// FlashMAC authenticates note, a flash: what a POST did, carried in a
// short-lived cookie to the GET it redirects to (POST/redirect/GET), so no
// page in the browser's history is the answer to a POST and no secret
// rides in the URL. A flash holds no secret; the MAC only keeps another
// site or a subdomain from planting one.
func (s *Service) FlashMAC(note string) string {
	return s.c.Hasher.Hash(kindFlash, note)
}

// CheckFlashMAC reports whether mac is note's FlashMAC under the current
// key or a previous one.
func (s *Service) CheckFlashMAC(note, mac string) bool {
	ok := 0
	for _, h := range s.hashers() {
		ok |= subtle.ConstantTimeCompare([]byte(mac), []byte(h.Hash(kindFlash, note)))
	}
	return ok == 1
}
