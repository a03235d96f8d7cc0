import NFTProxyCLI

await NFTProxyCommand.runMain()
