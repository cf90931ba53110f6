import YTEmpireCLI

@main
struct Entrypoint {
  static func main() {
    YTEmpireCommand.runHonouringExitContract()
  }
}
