module example.com/corral-go-app

go 1.19
