import NFTProxyCLI

NFTProxyCommand.main()
