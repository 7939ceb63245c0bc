module github.com/devicegate/devicegate

go 1.26.0

require (
	github.com/gorilla/mux v1.8.1
	go.etcd.io/bbolt v1.5.0
	golang.org/x/oauth2 v0.37.0
)

require (
	github.com/stretchr/testify v1.12.1 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
