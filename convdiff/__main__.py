from convdiff.cli import main

main()
