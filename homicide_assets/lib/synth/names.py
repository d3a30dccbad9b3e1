"""Name pools for synthetic people, with frequency weights and nicknames.

Pools are ordered from most to least common and weighted by a Zipf law (rank^-0.9), which
is roughly how given names and surnames are distributed in the ONS baby names releases and
in surname frequency studies: a few very common names (Smith, Khan, Mohammed, John) and a
long tail. Common names matter: namesakes are what makes linkage hard.

Pools follow the ethnic groups of the 2021 Census; ``white_older`` and ``white_younger``
split white British forenames by birth cohort (before or from 1965).
"""

from __future__ import annotations

import numpy as np

FORENAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("white_older", "m"): (
        "John", "David", "Michael", "Peter", "Robert", "William", "James", "Brian", "Paul", "Anthony",
        "Stephen", "Kenneth", "Alan", "Richard", "Christopher", "Thomas", "Keith", "George", "Ronald",
        "Raymond", "Derek", "Colin", "Gary", "Trevor", "Roger", "Barry", "Dennis", "Terence", "Frederick",
        "Edward", "Malcolm", "Graham", "Philip", "Leslie", "Geoffrey", "Arthur", "Stanley", "Harold",
        "Norman", "Gordon", "Patrick", "Francis", "Albert", "Ernest", "Douglas", "Neil", "Martin", "Ian",
    ),
    ("white_older", "f"): (
        "Margaret", "Patricia", "Mary", "Susan", "Elizabeth", "Jean", "Christine", "Linda", "Barbara",
        "Sandra", "Joan", "Kathleen", "Valerie", "Janet", "Carol", "Pauline", "Irene", "Maureen", "Doris",
        "Dorothy", "Sheila", "Brenda", "Pamela", "Jacqueline", "Ann", "Anne", "Elaine", "Marion", "Joyce",
        "Eileen", "Rita", "Gillian", "Beryl", "Sylvia", "Hilda", "Edna", "Winifred", "Rosemary", "Wendy",
        "Julie", "Jennifer", "Catherine", "Betty", "Vera", "Iris", "Audrey", "Lesley", "Josephine",
    ),
    ("white_younger", "m"): (
        "Daniel", "James", "Matthew", "Thomas", "Jack", "Ryan", "Luke", "Christopher", "Andrew", "Jamie",
        "Adam", "Michael", "Lee", "Craig", "Liam", "Joshua", "Samuel", "Benjamin", "Mark", "Dean", "Scott",
        "Jordan", "Connor", "Callum", "Kieran", "Aaron", "Nathan", "Jake", "Lewis", "Harry", "Oliver",
        "Charlie", "Alfie", "Jason", "Darren", "Wayne", "Shaun", "Stuart", "Gavin", "Robert", "William",
        "Joseph", "Alexander", "Jonathan", "Steven", "Carl", "Tyler", "Reece", "Bradley", "Ashley",
    ),
    ("white_younger", "f"): (
        "Sarah", "Emma", "Laura", "Rebecca", "Jessica", "Amy", "Hannah", "Charlotte", "Lauren", "Sophie",
        "Gemma", "Kelly", "Nicola", "Claire", "Lisa", "Louise", "Stacey", "Danielle", "Natalie", "Katie",
        "Chloe", "Emily", "Megan", "Holly", "Jade", "Leanne", "Samantha", "Victoria", "Rachel", "Zoe",
        "Kirsty", "Michelle", "Donna", "Joanne", "Amber", "Olivia", "Ellie", "Georgia", "Abigail", "Lucy",
        "Natasha", "Jennifer", "Elizabeth", "Katherine", "Tracey", "Karen", "Dawn", "Kerry", "Paige",
    ),
    ("asian", "m"): (
        "Mohammed", "Muhammad", "Mohammad", "Ali", "Imran", "Adil", "Zubair", "Asif", "Tariq", "Hamza",
        "Bilal", "Usman", "Amir", "Kamran", "Shahid", "Abdul", "Ibrahim", "Yusuf", "Zain", "Arif",
        "Harjit", "Amarjit", "Gurpreet", "Jaswinder", "Sukhdev", "Rajinder", "Kuldip", "Manjit", "Harpreet",
        "Sanjay", "Rajesh", "Vikram", "Anil", "Ravi", "Sunil", "Arjun", "Rohan", "Nikhil", "Hassan",
        "Adnan", "Faisal", "Irfan", "Naveed", "Sajid", "Wasim", "Zahid", "Aftab", "Khalid", "Rashid",
    ),
    ("asian", "f"): (
        "Fatima", "Aisha", "Ayesha", "Zainab", "Maryam", "Sana", "Nadia", "Shazia", "Samina", "Rubina",
        "Nasreen", "Parveen", "Shabana", "Farzana", "Amina", "Hafsa", "Khadija", "Iqra", "Noor", "Hina",
        "Gurpreet", "Harjinder", "Jasvinder", "Manjit", "Rajwinder", "Kulwant", "Surinder", "Balbir",
        "Priya", "Anita", "Sunita", "Neha", "Pooja", "Kiran", "Asha", "Meena", "Anjali", "Sonia", "Rani",
        "Sadia", "Saima", "Rukhsana", "Naila", "Tahira", "Yasmin", "Shamim", "Nazia", "Bushra", "Humaira",
    ),
    ("black", "m"): (
        "Delroy", "Winston", "Leroy", "Clive", "Errol", "Marcus", "Jermaine", "Tyrone", "Dwayne", "Andre",
        "Kemar", "Kareem", "Jerome", "Nathaniel", "Isaac", "Emmanuel", "Samuel", "Daniel", "David", "Joshua",
        "Chinedu", "Oluwaseun", "Tunde", "Kwame", "Kofi", "Abdi", "Abdirahman", "Mohamed", "Ahmed", "Yusuf",
        "Tendai", "Blessing", "Femi", "Segun", "Chukwuma", "Obinna", "Junior", "Rohan", "Curtis", "Lloyd",
    ),
    ("black", "f"): (
        "Marcia", "Beverley", "Paulette", "Sharon", "Yvonne", "Sonia", "Jacqueline", "Michelle", "Shanice",
        "Chantelle", "Tanisha", "Keisha", "Aaliyah", "Precious", "Grace", "Joy", "Blessing", "Esther",
        "Funmilayo", "Ngozi", "Chioma", "Adaeze", "Abena", "Ama", "Fatuma", "Hodan", "Amina", "Sahra",
        "Faith", "Patience", "Gloria", "Hyacinth", "Marlene", "Janice", "Simone", "Naomi", "Ruth", "Deborah",
    ),
    ("mixed", "m"): (
        "Jordan", "Tyler", "Kai", "Jayden", "Reuben", "Elijah", "Marcus", "Kyle", "Reece", "Callum", "Aaron",
        "Nathan", "Jamal", "Malachi", "Isaiah", "Leon", "Louis", "Levi", "Zachary", "Adam", "Ryan", "Jack",
    ),
    ("mixed", "f"): (
        "Jasmine", "Kayla", "Leah", "Maya", "Nia", "Aaliyah", "Jade", "Chloe", "Shannon", "Tia", "Amber",
        "Ella", "Imani", "Layla", "Mia", "Sienna", "Kelsey", "Demi", "Jodie", "Lauren", "Hannah", "Zara",
    ),
    ("other", "m"): (
        "Piotr", "Tomasz", "Krzysztof", "Andrzej", "Marcin", "Ionut", "Andrei", "Mihai", "Bogdan", "Florin",
        "Wei", "Jun", "Ahmad", "Omar", "Mustafa", "Karim", "Reza", "Dawit", "Kiros", "Aras", "Darius",
        "Juan", "Carlos", "Luis",
    ),
    ("other", "f"): (
        "Anna", "Katarzyna", "Agnieszka", "Magdalena", "Joanna", "Elena", "Ioana", "Maria", "Andreea",
        "Mei", "Li", "Fatemeh", "Leila", "Mariam", "Rahel", "Selam", "Shirin", "Sofia", "Laura", "Natalia",
    ),
}

SURNAMES: dict[str, tuple[str, ...]] = {
    "white": (
        "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Johnson", "Roberts",
        "Robinson", "Wright", "Thompson", "Walker", "White", "Edwards", "Hughes", "Green", "Hall", "Wood",
        "Harris", "Lewis", "Martin", "Jackson", "Clarke", "Clark", "Turner", "Hill", "Scott", "Cooper",
        "Morris", "Ward", "Moore", "King", "Watson", "Baker", "Harrison", "Morgan", "Patel", "Young",
        "Allen", "Mitchell", "James", "Anderson", "Phillips", "Lee", "Bell", "Parker", "Davis", "Price",
        "Bennett", "Griffiths", "Cook", "Bailey", "Shaw", "Carter", "Richards", "Kelly", "Marshall",
        "Collins", "Adams", "Simpson", "Chapman", "Stevens", "Holmes", "Mason", "Webb", "Rogers", "Powell",
        "Lloyd", "Ellis", "Palmer", "Gibson", "Cox", "Russell", "Fisher", "Saunders", "Hunt", "Mills",
        "Lane", "Hickman", "Bate", "Pritchard", "Whitehouse", "Dudley", "Hingley", "Round", "Tromans",
        "Cartwright", "Nock", "Bissell", "Homer", "Perks", "Garbett", "Yardley", "Hadley", "Willetts",
        "Wakeman", "Timmins", "Guest", "Wootton", "Southall", "Aston", "Hodgetts", "Bagley", "Tonks",
        "O'Brien", "O'Connor", "McDonald", "McCarthy", "Murphy", "Doyle", "Byrne", "Gallagher", "Fitzgerald",
    ),
    "asian": (
        "Khan", "Hussain", "Ahmed", "Ali", "Begum", "Akhtar", "Iqbal", "Mahmood", "Rahman", "Shah", "Bibi",
        "Mohammed", "Aslam", "Hanif", "Riaz", "Anwar", "Butt", "Malik", "Mirza", "Qureshi", "Rashid",
        "Saddique", "Sadiq", "Zaman", "Javed", "Mehmood", "Nawaz", "Rehman", "Uddin", "Miah", "Islam",
        "Singh", "Kaur", "Sandhu", "Gill", "Dhillon", "Sidhu", "Bains", "Johal", "Sahota", "Bassi", "Virdi",
        "Patel", "Sharma", "Kumar", "Chauhan", "Mistry", "Parmar", "Solanki", "Gupta", "Joshi", "Lal",
    ),
    "black": (
        "Williams", "Campbell", "Brown", "Smith", "Johnson", "Thomas", "Clarke", "Francis", "Grant", "Reid",
        "Henry", "Lewis", "Bailey", "Walker", "Robinson", "Gordon", "Morgan", "Wright", "Thompson", "Edwards",
        "Okafor", "Okonkwo", "Adeyemi", "Adebayo", "Mensah", "Osei", "Boateng", "Asante", "Owusu", "Nwosu",
        "Mohamed", "Abdi", "Hassan", "Ali", "Ahmed", "Farah", "Warsame", "Moyo", "Ncube", "Mutasa",
    ),
    "other": (
        "Kowalski", "Nowak", "Wisniewski", "Wojcik", "Kaminski", "Lewandowski", "Popescu", "Ionescu",
        "Popa", "Stan", "Chen", "Wang", "Li", "Zhang", "Liu", "Ahmadi", "Hosseini", "Karimi", "Mohammadi",
        "Tesfaye", "Gebremariam", "Haile", "Kaya", "Yilmaz", "Garcia", "Rodriguez", "Silva", "Santos",
    ),
}

#: Formal forename -> nicknames people go by and that get recorded.
NICKNAMES: dict[str, tuple[str, ...]] = {
    "Robert": ("Bob", "Rob", "Bobby", "Robbie"), "William": ("Bill", "Will", "Billy", "Liam"),
    "Richard": ("Rick", "Dick", "Richie"), "Michael": ("Mike", "Mick", "Micky"), "James": ("Jim", "Jimmy", "Jamie"),
    "John": ("Jack", "Johnny"), "Thomas": ("Tom", "Tommy"), "Christopher": ("Chris",), "Anthony": ("Tony", "Ant"),
    "Stephen": ("Steve", "Stevie"), "Steven": ("Steve", "Stevie"), "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",), "Andrew": ("Andy", "Drew"), "Jonathan": ("Jon", "Jonny"), "Joseph": ("Joe", "Joey"),
    "Samuel": ("Sam", "Sammy"), "Benjamin": ("Ben",), "Alexander": ("Alex", "Sandy"), "Edward": ("Ed", "Eddie", "Ted"),
    "Frederick": ("Fred", "Freddie"), "Kenneth": ("Ken", "Kenny"), "Terence": ("Terry",), "Raymond": ("Ray",),
    "Ronald": ("Ron", "Ronnie"), "Leslie": ("Les",), "Geoffrey": ("Geoff",), "Albert": ("Bert", "Albie"),
    "Harold": ("Harry",), "Douglas": ("Doug",), "Patrick": ("Pat", "Paddy"), "Francis": ("Frank",),
    "Philip": ("Phil",), "Nathaniel": ("Nathan", "Nat"), "Joshua": ("Josh",), "Nathan": ("Nate",),
    "Callum": ("Cal",), "Charlie": ("Charles",), "Harry": ("Henry",), "Oliver": ("Ollie",),
    "Margaret": ("Maggie", "Peggy", "Meg", "Rita"), "Elizabeth": ("Liz", "Beth", "Lizzie", "Betty"),
    "Patricia": ("Pat", "Trish", "Patsy"), "Susan": ("Sue", "Susie"), "Catherine": ("Cathy", "Kate", "Cath"),
    "Katherine": ("Kate", "Kathy", "Katie"), "Jacqueline": ("Jackie",), "Christine": ("Chris", "Chrissie"),
    "Jennifer": ("Jen", "Jenny"), "Rebecca": ("Becky", "Becca"), "Samantha": ("Sam", "Sammie"),
    "Victoria": ("Vicky", "Tori"), "Deborah": ("Debbie", "Deb"), "Josephine": ("Jo", "Josie"),
    "Jessica": ("Jess",), "Natasha": ("Tash",), "Abigail": ("Abbie", "Abi"), "Kathleen": ("Kath", "Kathy"),
    "Dorothy": ("Dot", "Dolly"), "Pamela": ("Pam",), "Valerie": ("Val",), "Gillian": ("Gill", "Jill"),
    "Sandra": ("Sandy",), "Barbara": ("Barb", "Babs"), "Rosemary": ("Rose", "Rosie"), "Winifred": ("Winnie",),
    "Nicola": ("Nicky",), "Danielle": ("Dani",), "Charlotte": ("Charlie", "Lottie"), "Emily": ("Em",),
    "Mohammed": ("Mo", "Mohd"), "Muhammad": ("Mo", "Mohd"), "Mohammad": ("Mo",), "Ibrahim": ("Ibby",),
    "Oluwaseun": ("Seun",), "Abdirahman": ("Abdi",), "Chukwuma": ("Chuks",), "Funmilayo": ("Funmi",),
    "Krzysztof": ("Kris",), "Aaliyah": ("Leah",), "Jermaine": ("Jerm",), "Gurpreet": ("Preet",),
    "Harjinder": ("Harj",), "Jaswinder": ("Jas",), "Jasvinder": ("Jas",), "Rajinder": ("Raj",),
}
#: Spellings of the same name that transliteration produces (recorded interchangeably).
SPELLING_VARIANTS: dict[str, tuple[str, ...]] = {
    "Mohammed": ("Muhammad", "Mohammad", "Mohamed", "Mohamad"), "Muhammad": ("Mohammed", "Mohammad"),
    "Mohammad": ("Mohammed", "Muhammad"), "Mohamed": ("Mohammed", "Mohamad"), "Ayesha": ("Aisha",),
    "Aisha": ("Ayesha",), "Yusuf": ("Yousef", "Yusef"), "Hussain": ("Hussein", "Husain"),
    "Mahmood": ("Mahmud", "Mehmood"), "Rehman": ("Rahman",), "Rahman": ("Rehman",),
    "Saddique": ("Siddique", "Sadiq"), "Zainab": ("Zaynab",), "Maryam": ("Mariam",), "Iqbal": ("Iqbaal",),
    "Clarke": ("Clark",), "Clark": ("Clarke",), "Philips": ("Phillips",), "Phillips": ("Philips",),
    "Thompson": ("Thomson",), "Davies": ("Davis",), "Reid": ("Reed", "Read"), "Ann": ("Anne",), "Anne": ("Ann",),
    "Jon": ("John",), "Stephen": ("Steven",), "Steven": ("Stephen",), "Geoffrey": ("Jeffrey",),
    "McDonald": ("MacDonald",), "O'Brien": ("OBrien", "O Brien"), "O'Connor": ("OConnor", "O Connor"),
}


def zipf_weights(n: int, exponent: float = 0.9) -> np.ndarray:
    """Relative weights for ``n`` names ordered from most to least common."""
    return 1.0 / np.arange(1, n + 1) ** exponent


def forename_pool_key(ethnicity: str, birth_year: int) -> str:
    """The forename pool for an ethnic group and birth year."""
    if ethnicity == "white":
        return "white_older" if birth_year < 1965 else "white_younger"
    return ethnicity
