from mlclip_cli.cli.app import main

main()
