module github.com/kubetrail/kubetrail

go 1.24

require (
	github.com/mattn/go-sqlite3 v1.14.53
	github.com/valyala/fastjson v1.6.10
	github.com/vmihailenco/msgpack/v5 v5.4.1
)

require github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
