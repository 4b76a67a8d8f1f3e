module github.com/kubetrail/kubetrail

go 1.24
