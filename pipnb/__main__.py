from pipnb.cli import main

main()
