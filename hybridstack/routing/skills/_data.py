"""Bundled word lists for the skill classifier (:mod:`hybridstack.routing.skills`).

One job: hold the small, hand-written vocabularies (stop words per Latin-script language,
Unicode script ranges, code/translation keywords in several languages) so the classifier
module holds logic only. Plain tuples of strings: importing this costs microseconds.
"""

from __future__ import annotations


def _terms(text: str) -> tuple[str, ...]:
    # Comma-separated so multi-word terms ("unit test") fit; line breaks are only layout.
    return tuple(" ".join(t.split()) for t in text.split(",") if t.strip())


def _termset(text: str) -> frozenset[str]:
    return frozenset(_terms(text))


# --- Unicode script ranges -------------------------------------------------------------
# (first code point, last code point, script name, default language, weight).
# The weight converts a character into "English-letter equivalents" so that share-of-text
# comparisons are fair: one Han character carries roughly what three Latin letters do
# (an English word is ~5 letters, a Chinese word ~1.7 characters).
SCRIPT_RANGES: tuple[tuple[int, int, str, str, float], ...] = (
    (0x0370, 0x03FF, "Greek", "el", 1.0),
    (0x0400, 0x04FF, "Cyrillic", "ru", 1.0),
    (0x0500, 0x052F, "Cyrillic", "ru", 1.0),
    (0x0530, 0x058F, "Armenian", "hy", 1.0),
    (0x0590, 0x05FF, "Hebrew", "he", 1.2),
    (0x0600, 0x06FF, "Arabic", "ar", 1.2),
    (0x0750, 0x077F, "Arabic", "ar", 1.2),
    (0x08A0, 0x08FF, "Arabic", "ar", 1.2),
    (0x0900, 0x097F, "Devanagari", "hi", 1.0),
    (0x0980, 0x09FF, "Bengali", "bn", 1.0),
    (0x0A00, 0x0A7F, "Gurmukhi", "pa", 1.0),
    (0x0A80, 0x0AFF, "Gujarati", "gu", 1.0),
    (0x0B80, 0x0BFF, "Tamil", "ta", 1.0),
    (0x0C00, 0x0C7F, "Telugu", "te", 1.0),
    (0x0C80, 0x0CFF, "Kannada", "kn", 1.0),
    (0x0D00, 0x0D7F, "Malayalam", "ml", 1.0),
    (0x0D80, 0x0DFF, "Sinhala", "si", 1.0),
    (0x0E00, 0x0E7F, "Thai", "th", 1.2),
    (0x0E80, 0x0EFF, "Lao", "lo", 1.2),
    (0x1000, 0x109F, "Myanmar", "my", 1.2),
    (0x10A0, 0x10FF, "Georgian", "ka", 1.0),
    (0x1100, 0x11FF, "Hangul", "ko", 2.5),
    (0x1200, 0x137F, "Ethiopic", "am", 1.5),
    (0x1780, 0x17FF, "Khmer", "km", 1.2),
    (0x3040, 0x309F, "Kana", "ja", 2.0),
    (0x30A0, 0x30FF, "Kana", "ja", 2.0),
    (0x3130, 0x318F, "Hangul", "ko", 2.5),
    (0x31F0, 0x31FF, "Kana", "ja", 2.0),
    (0x3400, 0x4DBF, "Han", "zh", 3.0),
    (0x4E00, 0x9FFF, "Han", "zh", 3.0),
    (0xAC00, 0xD7AF, "Hangul", "ko", 2.5),
    (0xF900, 0xFAFF, "Han", "zh", 3.0),
    (0xFB1D, 0xFB4F, "Hebrew", "he", 1.2),
    (0xFB50, 0xFDFF, "Arabic", "ar", 1.2),
    (0xFE70, 0xFEFF, "Arabic", "ar", 1.2),
    (0xFF66, 0xFF9F, "Kana", "ja", 2.0),
)

# Letters that only Persian / Urdu use within the Arabic script, and Ukrainian in Cyrillic.
PERSIAN_LETTERS = "پچژگکی"
URDU_LETTERS = "ٹڈڑںےھ"
UKRAINIAN_LETTERS = "іїєґІЇЄҐ"

# --- Latin-script stop words -------------------------------------------------------------
# Short function words that are frequent in running text and rare in the other languages.
# Words shared between languages are allowed; the scorer splits their weight. Malay (ms)
# and Indonesian (id) are scored as one family and told apart with the marker sets below.
STOPWORDS: dict[str, tuple[str, ...]] = {
    "en": _terms(
        """
        the, a, an, and, or, is, are, was, were, be, been, to, of, in, on, for, with, that,
        this, these, those, it, its, you, your, i, me, my, we, our, us, they, them, their, he,
        she, his, her, what, how, why, when, where, which, who, whom, can, could, do, does, did,
        please, from, by, at, as, not, no, have, has, had, will, would, should, shall, must, if,
        then, there, than, so, but, all, some, any, much, many, about, into, over, also, just,
        very, here, hi, hello, hey, thanks, thank, good, morning, night, yes, okay, ok, let,
        let's, i'm, it's, what's, that's, don't, doesn't, can't, isn't, we're, you're, i've, i'd
        """
    ),
    "id": _terms(
        """
        yang, dan, di, ke, dari, ini, itu, untuk, dengan, tidak, ada, saya, kami, kita, anda,
        apa, bagaimana, kenapa, mengapa, tolong, bisa, mau, sudah, belum, akan, juga, atau,
        karena, jika, kalau, pada, dalam, sebuah, seorang, oleh, lagi, ya, berapa, buat,
        buatkan, apakah, adalah, tentang, lebih, sangat, harus, minta, mohon, terima, kasih,
        selamat, pagi, siang, malam, masih, sama, setiap, semua, hanya, saja, gimana, nggak,
        gak, banget, dong, aja, sih, kok, pakai, bikin, kapan, dimana, bahasa, sebelum, sesudah,
        pesanan,
        cara, tanpa, siapa, tempat, makan, pertama, jelaskan, hasilnya, selalu, gimana, kalo
        """
    ),
    "ms": _terms(
        """
        yang, dan, di, ke, dari, ini, itu, untuk, dengan, tidak, ada, saya, kami, kita, anda,
        apa, bagaimana, kenapa, mengapa, tolong, boleh, sudah, belum, akan, juga, atau, kerana,
        jika, kalau, pada, dalam, sebuah, seorang, oleh, lagi, berapa, buat, apakah, adalah,
        tentang, lebih, sangat, harus, minta, mohon, terima, kasih, selamat, pagi, malam, masih,
        sama, setiap, semua, hanya, nak, tak, sahaja, ialah, hendak, awak, sila, dah, ni, tu,
        macam, mana, encik, cik, pun, lah, kat, dekat, bila, tarikh, bahasa, sebelum,
        siapa, tempat, makan, pertama, cara, tanpa, nak, tak, sangat, best
        """
    ),
    "vi": _terms(
        """
        và, của, là, không, có, được, cho, này, một, những, các, với, trong, tôi, bạn, người,
        thì, làm, thế, nào, sao, gì, để, khi, đã, sẽ, đang, rất, cũng, nhưng, hay, hoặc, ở, từ,
        theo, về, như, xin, chào, cảm, ơn, hãy, giúp, muốn, cần, bao, nhiêu
        """
    ),
    "es": _terms(
        """
        el, la, los, las, un, una, unos, unas, de, del, que, y, en, es, por, para, con, no, se,
        su, sus, al, lo, como, más, pero, me, mi, te, tu, qué, cómo, cuál, cuáles, dónde,
        cuándo, porque, hola, gracias, puedes, puede, quiero, necesito, tengo, hay, este, esta,
        ese, esa, muy, también, son, está, están, ya, o, sí, si, sobre, entre, hasta, desde,
        cuando, todo, todos, le, les, nos,
        quién, quien, cuánto, cuanto, hace, hacer, mejor, algo, nada, mucho, ahora
        """
    ),
    "pt": _terms(
        """
        o, a, os, as, um, uma, de, do, da, dos, das, que, e, em, no, na, nos, nas, é, por, para,
        com, não, se, seu, sua, ao, como, mais, mas, eu, você, meu, minha, isso, este, esta,
        olá, obrigado, obrigada, gostaria, quero, preciso, tenho, há, muito, também, são, está,
        já, ou, sim, sobre, entre, até, quando, todo, pelo, pela,
        quem, tudo, bem, onde, qual, quais, porque, todos, você, vocês, fazer, melhor, obrigado
        """
    ),
    "fr": _terms(
        """
        le, la, les, un, une, des, de, du, et, en, est, que, qui, pour, dans, par, sur, avec,
        ne, pas, se, ce, cette, ces, il, elle, nous, vous, je, tu, mon, ma, mes, son, sa, au,
        aux, plus, mais, ou, où, comment, pourquoi, quel, quelle, bonjour, merci, c'est, j'ai,
        suis, être, avoir, très, aussi, sont, fait, peux, pouvez, voudrais, m'expliquer,
        quoi, qu'est, est-ce, faut, faire, mieux, entre, sans, chez, notre, votre, nos, vos
        """
    ),
    "de": _terms(
        """
        der, die, das, ein, eine, einen, einem, und, ist, nicht, ich, du, sie, wir, ihr, es, zu,
        mit, von, für, auf, den, dem, des, im, auch, wie, was, warum, wo, wann, kann, kannst,
        können, bitte, danke, hallo, mir, mich, dir, sich, oder, aber, wenn, dass, hat, haben,
        sind, war, wird, werden, noch, nur, schon, sehr, viele, hat, gibt,
        man, einem, einer, eines, über, heute, morgen, gut, wer, welche, welcher, mein, meine,
        unser, unsere, soll, sollte, ich, habe, bin, kein, keine, diese, dieser
        """
    ),
    "it": _terms(
        """
        il, lo, la, gli, le, un, una, di, del, della, che, e, è, per, con, non, si, come, più,
        ma, sono, mi, ti, ciao, grazie, perché, cosa, questo, questa, quello, anche, molto, ho,
        hai, ha, nel, nella, al, alla, dei, delle, puoi, vorrei,
        i, fino, dal, dalla, sono, quali, quale, dove, quando, chi, perché, meglio, tutti, tutte,
        posso, vuoi, essere, fare, questi, quelle, gli
        """
    ),
    "tr": _terms(
        """
        bir, ve, bu, da, de, için, ile, ne, nasıl, neden, mi, mı, mu, mü, çok, daha, var, yok,
        ben, sen, biz, siz, ama, gibi, kadar, merhaba, teşekkür, lütfen, nedir, olan, olarak,
        şey, her, hangi,
        nelerdir, nedir, nerede, kaç, mısın, misin, musun, müsün, bana, beni, benim, sizin,
        nasıl, gereken, olur, yapılır, değil, şu, iyi, hem
        """
    ),
    "tl": _terms(
        """
        ang, ng, mga, sa, na, ay, at, ko, mo, po, ako, ikaw, siya, kami, tayo, namin, natin,
        ito, iyan, paano, bakit, ano, saan, kailan, magandang, salamat, opo, hindi, may, wala,
        para, lang, din, rin, nang, kung,
        dapat, ba, akong, muna, ka, naman, kayo, sila, niya, nila, pa, ano, si, ni, kay,
        pakisulat, pakigawa, isulat, gumawa
        """
    ),
    "sw": _terms(
        """
        na, ya, wa, za, kwa, ni, cha, vya, la, katika, kwenye, hii, hizi, huu, hilo, gani,
        nini, nani, wapi, lini, jinsi, vipi, kama, kuliko, sana, pia, lakini, au, je, mimi,
        wewe, yeye, sisi, nyinyi, wao, yangu, yako, yake, yetu, wenu, wao, habari, asante,
        tafadhali, karibu, ndiyo, hapana, sasa, leo, kesho, jana, kila, baada, kabla, zote,
        yote, nawezaje, ninawezaje, naomba, niandikie, nieleze, tofauti, kati, mimi, kuna,
        bora, siku, mwezi, mtu, watu, eleza, maana, tatizo, nini, mama, watoto, kisha, baada,
        mmoja, wangu, kwanza, hujambo, sijambo, shikamoo, sawa, rafiki, ujumbe, tafsiri
        """
    ),
    "ha": _terms(
        """
        da, na, ta, ya, ba, ne, ce, a, ga, kuma, amma, ko, idan, don, saboda, wannan, wancan,
        waɗannan, menene, mene, wanene, wacece, ina, yaya, yaushe, nawa, ni, kai, ke, shi, ita,
        mu, ku, su, sannu, gode, sosai, zan, za, ake, yi, mini, masa, mata, musu, shine,
        tsakanin, bambanci, duk, kowane, kowace, gobe, yau, jiya, rubuta, fassara,
        zuwa, daga, cikin, kan, fi, mafi, yana, tana, suna, muna, rage, tare, lokacin, babban,
        birnin, sarkin, yanzu, kwana, lafiya, barka, yaro, yarinya, abinci, ruwa, gida, aiki
        """
    ),
    "yo": _terms(
        """
        ni, ti, sí, sì, àti, ní, kí, tí, ń, ó, mo, o, a, wọ́n, wọn, rẹ̀, mi, yín, wa, ẹ, èyí,
        yìí, náà, kan, báwo, kíni, ta, ibo, nígbà, mélòó, jẹ́, ṣé, ṣe, lè, yóò, máa, fún, lórí,
        nínú, láti, sí, pẹ̀lú, gbogbo, púpọ̀, dáadáa, ọjọ́, òní, ọ̀la, àná, lọ, wá, rí,
        kọ, kò, bẹ́ẹ̀ni, rárá, káàárọ̀, káàsán, kú, jọ̀wọ́, ọ̀rẹ́
        """
    ),
    "pl": _terms(
        """
        i, w, z, na, się, nie, do, to, że, jest, jak, co, czy, o, a, ale, od, po, za, dla,
        przez, przy, jaka, jaki, jakie, który, która, które, kto, gdzie, kiedy, dlaczego, ile,
        mnie, mi, ty, on, ona, my, wy, oni, moja, mój, moje, twój, jego, jej, ich, tak, też,
        bardzo, już, tylko, jeszcze, można, być, był, była, są, mam, ma, cześć, dziękuję,
        proszę, dzień, dobry, napisz, jaką, czym, każdym, każdej, wszystkie, wszystkich
        """
    ),
    # Hindi in Latin letters ("Hinglish"), common in chat and support tickets.
    "hi": _terms(
        """
        hai, hain, kya, kaise, kaisa, kyun, kyon, mein, ko, ke, ka, ki, se, aur, nahi, nahin,
        bhi, toh, hum, tum, aap, mera, meri, mere, tera, apna,
        yeh, ye, woh, wo, kuch, koi, bahut, accha, acha, achha, theek, thik, bhai, yaar,
        batao, bataiye, karo, karte, karna, kar, raha, rahi, rahe, gaya, gayi, hoon, hu,
        kab, kahan, kitna, kitne, sakta, sakte, chahiye, hisaab, dijiye, samjhao
        """
    ),
    "nl": _terms(
        """
        de, het, een, en, van, ik, je, dat, die, niet, met, op, voor, zijn, er, maar, om, ook,
        als, bij, naar, wat, hoe, waarom, kun, kunt, alsjeblieft, bedankt, hallo, wij, jullie,
        heb, heeft, deze, dit
        """
    ),
}

# Words that tell Malay from Indonesian once the pair has won (they share most stop words).
MALAY_MARKERS: frozenset[str] = _termset(
    """
    awak, bil, cik, dah, encik, hendak, ialah, inggeris, kat, kenderaan, kerana, kod, macam,
    nak, ni, percuma, ralat, sahaja, sila, tak, tarikh, telefon, tu, wang
    """
)
INDONESIAN_MARKERS: frozenset[str] = _termset(
    """
    aja, banget, bikin, bisa, dong, gak, gimana, gratis, inggris, kapan, karena, kok, mau,
    nggak, pakai, saja, sih, telepon, uang
    """
)

# --- Language names (for "into Thai", "the Malay version") -----------------------------
LANGUAGE_NAMES: tuple[str, ...] = _terms(
    """
    english, chinese, mandarin, cantonese, japanese, korean, thai, vietnamese, indonesian,
    bahasa, malay, tagalog, filipino, arabic, hindi, urdu, bengali, tamil, spanish,
    portuguese, french, german, italian, dutch, russian, turkish, persian, farsi, hebrew,
    greek, polish, swahili, burmese, khmer, lao, ukrainian, czech, swedish, norwegian,
    danish, finnish, romanian, hungarian, yoruba, hausa, amharic, igbo, zulu, xhosa,
    somali, oromo, tigrinya, twi, wolof, kinyarwanda, punjabi, gujarati, marathi, telugu,
    kannada, malayalam, sinhala, nepali, pashto, kurdish, uzbek, kazakh, mongolian, tibetan,
    serbian, croatian, bulgarian, slovak, slovenian, lithuanian, latvian, estonian,
    icelandic, irish, welsh, catalan, basque, galician, cebuano, javanese, sundanese, hmong,
    kiswahili
    """
)

# --- Code vocabulary ------------------------------------------------------------------
# Technology names: a mention is weak evidence ("What is Python used for?" is general),
# so these only add up together with an artefact, an intent verb or actual syntax.
TECH_TERMS: tuple[str, ...] = _terms(
    """
    python, javascript, typescript, java, golang, kotlin, ruby, php, perl, scala, haskell,
    elixir, erlang, clojure, lua, dart, flutter, sql, mysql, postgres, postgresql, sqlite,
    mongodb, redis, bash, zsh, powershell, linux, react, vue, angular, svelte, node,
    node.js, nodejs, npm, pip, django, flask, fastapi, laravel, rails, spring boot, express,
    pandas, numpy, pytorch, tensorflow, docker, kubernetes, k8s, terraform, ansible, git,
    github, gitlab, github actions, ci/cd, html, css, json, yaml, xml, regex, rest api,
    graphql, http, jwt, oauth, aws, gcp, azure, webpack, vite, jest, pytest, junit,
    selenium, cron, crontab, nginx, jquery, ajax, localhost, stdout, stderr, stdin, sed,
    awk, grep, curl, ssh, chmod, kubectl, c++, c#, .net, swiftui, android, ios app, div,
    dom, async, await, goroutine, goroutines, mutex, pull request, time complexity, big-o,
    quicksort, binary search, linked list, hash map, recursion, recursive, i18n,
    react-i18next, vscode, jupyter, matplotlib, excel formula, vba, dockerfile, makefile,
    localstorage, spreadsheet formula, cypher, neo4j, bigquery, matlab, spark, pyspark,
    xpath, jq, symfony, flexbox, css grid, ubuntu, debian, venv, virtualenv, conda, pm2,
    helm, bicep, promql, kql, solidity, eslint, prettier, uvicorn, gunicorn, next.js, nuxt,
    tailwind, hibernate, retrofit, recyclerview, usestate, useeffect, react native, vba,
    std::move, try/catch, composable, cli, sdk, json schema, websocket, cors, nosql,
    elasticsearch, kafka, rabbitmq, dynamodb, mariadb, cassandra, grafana, prometheus,
    jenkins, gradle, maven, cmake, gcc, clang, llvm, typescript, svelte, objective-c,
    xcode, android studio, godot, wordpress plugin, shopify liquid, excel vba,
    sheets formula, power query, dax, airflow, dbt, tomcat, systemd, journalctl, wsl,
    homebrew, aws lambda, s3, ec2, cloudformation, cdk, firebase, supabase, prisma, sequelize,
    sqlalchemy, orm, graphql, grpc, protobuf, oauth2, openapi, swagger, postman, cypress,
    playwright, puppeteer, storybook, vitest, mocha, rspec, phpunit, serverless, microservices,
    memcached, varnish, haproxy, traefik, envoy, istio, consul, etcd, zookeeper, nats,
    pulsar, clickhouse, timescaledb, influxdb, couchdb, firestore, cockroachdb, spanner,
    redshift, databricks, kinesis, sqs, pubsub, celery, sidekiq, nestjs, remix, astro
    """
)
# Case-sensitive technology names that are ordinary English words in lower case.
TECH_TERMS_CASED: tuple[str, ...] = _terms(
    """
    Go, Rust, Swift, C, R, Node, Spring, Spark, Excel, MATLAB
    """
)
# Things a programmer produces or inspects.
CODE_ARTEFACTS: tuple[str, ...] = _terms(
    """
    function, functions, method, methods, class, classes, script, scripts, regex, regular
    expression, query, queries, unit test, unit tests, test case, test cases, endpoint,
    endpoints, api, component, components, module, snippet, code, codebase, source code,
    stack trace, loop, variable, algorithm, implementation, one-liner, command, cron job,
    workflow, dockerfile, yaml, config, controller, stored procedure, schema, migration,
    repository, repo, library, compile, compiler, syntax, debug, debugging, refactor, type
    hints, docstring, lint, linter, deployment, container, interface, commit, memory leak,
    merge conflict, list comprehension, commits, rebase, cherry-pick, pods, namespaces,
    dockerfile, docker image, constructor, move constructor, destructor, data frame,
    dataframe, composable, one-liner, log file, middleware, props, state management, null
    safety, virtual environment, environment variables, env var, crontab, service worker,
    websocket connection, http request, status code, endpoint, payload, json file, csv file,
    tests, end-to-end tests, e2e tests, integration tests, test suite, fixture, fixtures, mock
    """
)
# Verbs that turn an artefact into a deliverable ("write a function", "fix this script").
CODE_INTENT_VERBS: tuple[str, ...] = _terms(
    """
    write, implement, fix, debug, refactor, review, optimise, optimize, convert, port,
    generate, create, build, set up, setup, deploy, test, rewrite, add, make, explain,
    improve, speed up, translate
    """
)
# Asks whose deliverable is inherently code (regex, SQL, shell), in several languages.
CODE_ASKS: tuple[str, ...] = _terms(
    """
    regex, regexp, regular expression, sql query, query sql, sql statement, shell script,
    bash script, bash one-liner, cron expression, consulta sql, expresión regular, expresion
    regular, expressão regular, expression régulière, requête sql, skrip bash, skrip shell,
    biểu thức chính quy, câu lệnh sql
    """
)
# The same in scripts written without spaces (matched as substrings).
CODE_ASKS_NOSPACE: tuple[str, ...] = _terms(
    """
    正则表达式, 正則表達式, SQL查询, SQL 查询, SQL语句, shell 脚本, shell脚本,
    正規表現,
    정규식, 정규 표현식
    """
)
# Non-English words for code / function / bug / script, matched as substrings because
# CJK, Thai and friends have no spaces: zh, ja, ko, th, ar, hi, ru.
FOREIGN_CODE_WORDS: tuple[str, ...] = _terms(
    """
    代码, 代碼, 函数, 函數, 修复, 报错, 報錯, 脚本, 腳本, 正则, 正則,
    单元测试, 單元測試, 编程, 編程, 接口, 变量, 數據庫, 数据库, 调试,
    編譯, 编译, 前端, 后端, 算法, 排查,
    コード, 関数, バグ, スクリプト, 正規表現, コンポーネント, プログラミング,
    デバッグ, エラー,
    코드, 함수, 버그, 스크립트, 프로그래밍, 파이썬, 자바스크립트, 디버그,
    โค้ด, ฟังก์ชัน, ฟังก์ชั่น, บั๊ก, สคริปต์, เขียนโปรแกรม,
    كود, دالة, برمجة, بايثون, شيفرة, الكود, جافا,
    कोड, फ़ंक्शन, फंक्शन, पायथन, बग,
    单例, 设计模式, 設計模式, 数据结构,
    データベース, 데이터베이스, ฐานข้อมูล, قاعدة بيانات, डेटाबेस,
    код, функци, скрипт,
    组件, 查询语句, 报错, 部署, 容器里, 命令行, 数据库表, 索引, 前端, 接口文档,
    シェル, マイグレーション, コミット, クエリ, コマンド, カラム, リネーム, マクロ,
    쿼리, 명령어, 수식, 에러, 컴포넌트, 설정 파일, 리눅스, 엑셀, 도커, 커밋, 브랜치,
    คำสั่ง git, สูตร excel, โฟลเดอร์, ไฟล์,
    استعلام, تعبير نمطي, تعبيرا نمطيا, صلاحيات ملف, جافاسكربت, لينكس,
    کوئری, تابع پایتون, پایتون, جاوااسکریپت, لینوکس, لاراول, کد,
    कमांड, स्क्रिप्ट, लिनक्स, जावास्क्रिप्ट, फ़ोल्डर,
    ফাংশন, কোয়েরি, কমান্ড, জাভাস্ক্রিপ্ট, পাইথন, লিনাক্স, ডিকশনারি, অ্যারে,
    பைத்தான், பைதான், பட்டியல், கோப்பு,
    ፓይተን, ፋይል,
    регулярн, sql-запрос, sql-запит, функці, скрипт, регулярний вираз
    """
)
# The same in Latin-script languages (word-bounded): ms/id, es, pt, fr, vi, de.
FOREIGN_CODE_WORDS_LATIN: tuple[str, ...] = _terms(
    """
    kode, kod, fungsi, skrip, ralat, galat, perbaiki, pemrograman, pengaturcaraan, código,
    codigo, función, funcion, consulta sql, expresión regular, expresion regular,
    programación, depurar, função, programação, fonction, requête, programmation, hàm, đoạn
    code, mã nguồn, lập trình, funktion, quellcode, fehlermeldung, programmieren, bucle,
    pangkalan data, basis data, base de datos, banco de dados, base de données,
    cơ sở dữ liệu, vòng lặp, perulangan, regulären ausdruck, regulärer ausdruck, abfrage,
    sql-abfrage, befehl, skript, expression régulière, commande, fichier, fichiers,
    dossier, requête, fórmula, consulta, expresión regular, expressão regular, espressione
    regolare, funzione, funkcję, funkcja, zapytanie, wyrażenie regularne, skrypt,
    polecenie, düzenli ifade, fonksiyon, sorgu, sorgusu, komut, betik, dosya, dosyaları,
    câu lệnh, biểu thức chính quy, perintah, kueri, berkas, folder, fail, arahan, skrip,
    talaksan, utos, amri, faili, faili zote, fayil, fayiloli, fayilolin, umarni, fáìlì,
    àṣìṣe, kuskure, hitilafu
    """
)
# "Program" words: weaker, since "程序" is also "procedure" and "โปรแกรม" a TV programme.
WEAK_FOREIGN_CODE_WORDS: tuple[str, ...] = _terms(
    """
    程序, プログラム, 프로그램, โปรแกรม, प्रोग्राम
    """
)
# Programming-language names as written in other scripts.
FOREIGN_TECH_WORDS: tuple[str, ...] = _terms(
    """
    파이썬, パイソン, بايثون, ไพธอน, पायथन, 자바스크립트, 리눅스, 스프링, 엑셀, 도커,
    파이썬으로, 자바, 코틀린, 안드로이드, リナックス, ドッカー, питон, пайтон, джава,
    পাইথন, জাভাস্ক্রিপ্ট, লিনাক্স, پایتون, لاراول, جاوااسکریپت, لینوکس, لينكس, جافاسكربت,
    जावास्क्रिप्ट, लिनक्स, பைத்தான், ፓይተን, 파이썬에서
    """
)

# --- Translation intents -----------------------------------------------------------------
# Substrings meaning "translate" in scripts without spaces (zh, ja, ko, th, ar, hi, ru).
TRANSLATE_WORDS_NOSPACE: tuple[str, ...] = _terms(
    """
    翻译, 翻譯, 译成, 譯成, 翻成, 翻訳, 訳して, 英訳, 和訳,
    번역, แปล, ترجم, अनुवाद, перевед, перевод
    """
)
# Word-initial stems meaning "translate" in Latin-script languages (id/ms, es, pt, fr, de,
# it, tr, tl, nl).
TRANSLATE_STEMS_LATIN: tuple[str, ...] = _terms(
    """
    terjemah, alih bahasa, traduc, traduzc, traduz, tradui, traduction, übersetz, tradurre,
    traduci, traduzione, çevir, isalin, vertaal
    """
)

# --- Greetings in English (general) ----------------------------------------------------
GREETINGS: tuple[str, ...] = _terms(
    """
    hi, hello, hey, hiya, good morning, good afternoon, good evening, good night, thanks,
    thank you, cheers, bye, goodbye, how are you, what's up, yo, morning, see you
    """
)

# "Write / fix / make" in other languages: with a technology name they make a code request.
FOREIGN_INTENT_WORDS: tuple[str, ...] = _terms(
    """
    写, 寫, 编写, 編寫, 实现, 實現, 修复, 修復, 修改, 优化, 優化,
    書いて, 作って, 直して, 実装,
    작성, 만들어, 고쳐, 구현,
    เขียน, แก้, สร้าง,
    اكتب, أنشئ, أصلح,
    लिख, बना,
    напиши, исправь
    """
)
FOREIGN_INTENT_WORDS_LATIN: tuple[str, ...] = _terms(
    """
    tulis, tuliskan, buat, buatkan, bikin, perbaiki, betulkan, escribe, escribir, crea,
    corrige, arregla, implementa, hago, hacer, écris, écrire, crée, créer, viết, sửa, tạo,
    schreibe, erstelle, escreva, faça, corrija
    """
)

# Source-file extensions that make "name.ext" a file name worth flagging as code.
FILE_EXTENSIONS: tuple[str, ...] = _terms(
    """
    py, ipynb, js, mjs, cjs, ts, tsx, jsx, go, rs, java, kt, kts, cpp, cc, cxx, hpp, cs, rb,
    php, swift, scala, sh, bash, zsh, ps1, sql, yml, yaml, toml, ini, cfg, vue, svelte, css,
    scss, less, htm, html, lua, pl, dart, gradle, tf, proto, xml, lock, mk
    """
)

# Spelled-out numbers for word problems ("Five people sit in a row"); "one" is too common.
NUMBER_WORDS: frozenset[str] = _termset(
    """
    two, three, four, five, six, seven, eight, nine, ten, eleven, twelve, twenty, thirty,
    hundred, thousand, twice, half, double, triple
    """
)


# --- Choices between technologies ("Flutter or React Native for our app?") -------------
# A prompt that asks to pick between options for a project is a decision, not a code
# request, even when it names technologies. "or"/"versus" in many languages, matched as
# whole words in Latin scripts and as substrings elsewhere.
CHOICE_WORDS_LATIN: tuple[str, ...] = _terms(
    """
    or, vs, versus, oder, ou, o, czy, veya, yoksa, atau, hay, hoặc, au, ko, tàbí, ama
    """
)
CHOICE_WORDS_NOSPACE: tuple[str, ...] = _terms(
    """
    还是, 還是, 或者, 哪个, 哪個, どちら, それとも, どっち, 아니면, 또는, 어느, หรือ, أم, أو,
    یا, या, নাকি, அல்லது, ወይስ, ወይም, или, чи, або, czy
    """
)
# Words of a team or project deciding: "our", "team", "startup" in many languages.
PROJECT_WORDS_LATIN: tuple[str, ...] = _terms(
    """
    we, our, us, team, teams, startup, company, business, project, product, app, apps, site,
    sites, website, service, services, system, platform, mobile, api, apis, budget,
    developers, engineers, clients, customers, users,
    traffic, wir, unser, unsere, unseren, firma, projekt, unternehmen, entwickler, nous,
    notre, nos, équipe, entreprise, projet, société, nuestra, nuestro, nosotros, equipo,
    empresa, proyecto, nossa, nosso, equipe, projeto, loja, nostro, nostra, azienda,
    progetto, squadra, gestionale, nasz, nasza, firmy, zespół, sklep, ekip, şirket, proje,
    kami, kita, tim, perusahaan, proyek, toko, bisnis, syarikat, kedai, negosyo,
    kumpanya, proyekto, nhóm, dự án, doanh nghiệp, biashara, kampuni, timu, mradi,
    kasuwanci, kamfani, òwò
    """
)
PROJECT_WORDS_NOSPACE: tuple[str, ...] = _terms(
    """
    我们, 我們, 团队, 團隊, 公司, 项目, 項目, 系统, 系統, 创业, 創業, チーム, 会社,
    プロジェクト, サービス, 私たち, 팀, 회사, 프로젝트, 서비스, 스타트업, 우리, наш, команд,
    компани, проект, стартап, бізнес, บริษัท, ทีม, ธุรกิจ, โปรเจกต์, شركت, فريق, مشروع,
    الناشئة, شرکت, فروشگاه, تیم, پروژه, کسب, कंपनी, स्टार्टअप, टीम, प्रोजेक्ट, बिज़नेस,
    ব্যবসা, কোম্পানি, টিম, வணிக, நிறுவன, குழு, ንግድ, ድርጅት, công ty
    """
)

# Nouns that make a technology name a deliverable when they follow it ("jq filter",
# "Excel formula", "crontab entry", "kubectl command"); alone they are ordinary words.
TECH_ARTEFACT_NOUNS: frozenset[str] = _termset(
    """
    query, queries, formula, formulas, filter, expression, entry, command, commands,
    macro, script, snippet, one-liner, composable, component, hook, template, module,
    function, pipeline, workflow, config, manifest, regex, selector, rule, rules
    """
)
# Words that ask for a decision ("better", "should", "worth") in many languages.
DECISION_WORDS_LATIN: tuple[str, ...] = _terms(
    """
    should, better, worth, which, choose, pick, recommend, prefer, rather, instead, smarter,
    cheaper, besser, lohnt, sollen, sollten, soll, empfehlen, welche, welches, mieux, vaut,
    faut-il, choisir, conseilles, recommandes, mejor, conviene, debería, deberíamos, elegir,
    recomiendas, melhor, vale, devo, devemos, escolher, compensa, meglio, dovrei, dovremmo,
    scegliere, lepszy, lepsza, lepiej, warto, wybrać, iyi, seçmeli, mantıklı, lebih baik,
    sebaiknya, pilih, patutkah, mending, mas mabuti, nên, tốt hơn, bora, fi kyau, dára
    """
)
DECISION_WORDS_NOSPACE: tuple[str, ...] = _terms(
    """
    应该, 應該, 更好, 值得, 划算, 选哪, 選哪, 该选, 該選, すべき, べき, いいですか, 나을까,
    좋을까, 나은, 해야, ดีกว่า, ควร, الأفضل, أفضل, بهتر, बेहतर, ठीक रहेगा, ভালো, উচিত, சிறந்த,
    வேண்டுமா, ይሻላል, лучше, стоит, выбрать, краще, варто
    """
)
# English words a code question written in another language keeps in English
# ("Laravel ขึ้น error 419", "nikirun migrate", "git clone করার সময়").
FOREIGN_CONTEXT_TECH_WORDS: frozenset[str] = _termset(
    """
    error, errors, bug, debug, deploy, commit, branch, merge, push, pull request, logs,
    log, pod, pods, container, containers, script, function, query, migrate, migration,
    install, setup, config, validation, form, submit, reload, api, server, database,
    frontend, backend, component, props, state, middleware, framework, library, package,
    module, class, object, array, string, loop, variable, endpoint, repository, repo, build,
    compile, runtime, crash, timeout, request, response, json, yaml, csv, clone, docker,
    authentication, token, cache, localhost, port, terminal, console, shell, command
    """
)
