package config

import "testing"

// TestListenEnv: -addr wins, then DEVICEGATE_ADDR; PORT (a container
// platform's variable) means every interface, but not under the Functions
// host, whose port variable Load reads itself.
func TestListenEnv(t *testing.T) {
	tests := []struct {
		env  []string
		flag string
		want string
	}{
		{[]string{"PORT=8080"}, "", ":8080"},
		{[]string{"PORT=8080", "DEVICEGATE_ADDR=127.0.0.1:9"}, "", "127.0.0.1:9"},
		{[]string{"PORT=8080"}, "127.0.0.1:7", "127.0.0.1:7"},
		{[]string{"PORT=8080", "FUNCTIONS_CUSTOMHANDLER_PORT=7071"}, "", ""},
		{nil, "", ""},
	}
	for _, tt := range tests {
		if got := ListenEnv(Getenv(tt.env), tt.flag)("DEVICEGATE_ADDR"); got != tt.want {
			t.Errorf("%v, -addr %q: DEVICEGATE_ADDR %q, want %q", tt.env, tt.flag, got, tt.want)
		}
	}
}

// TestGetenvLastWins: of a name set twice in environ, the last value is
// read, as the process environment would have it; a value may hold "=".
func TestGetenvLastWins(t *testing.T) {
	getenv := Getenv([]string{"A=1", "B=x=y", "A=2", "junk"})
	if getenv("A") != "2" || getenv("B") != "x=y" || getenv("junk") != "" {
		t.Errorf("A=%q B=%q junk=%q", getenv("A"), getenv("B"), getenv("junk"))
	}
}
