from sepkit.data.realistic.generator import main

main()
